"""Keep bench/strictness.py, bench/load.py and bench/soak.py working: each runs once in a
tiny mode against narrows. No figure is asserted, only that each part ends in a result and
that the generated documents are written where they belong (into copies, here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import IN_CI, ROOT

BENCH_PYTHON = ROOT / ".bench-venv" / "bin" / "python"


def run(python: str, *args: str, timeout: float = 90) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [python, "-m", *args, "--no-lock"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_strictness_script_table(tmp_path: Path) -> None:
    from bench import strictness

    out = run(sys.executable, "bench.strictness", "--servers", "narrows", "--only", "ok-get,cl-te")
    assert "narrows    strict answers 2/2" in out
    assert "| `cl-te`: " in out and "| 400, closed | 400, closed |" in out
    doc = tmp_path / "strictness.md"
    doc.write_text(f"# title\n\nprose\n\n{strictness.BEGIN}\nold\n{strictness.END}\n\nafter\n")
    strictness.write_docs(["| table |"], ["header line"], doc)
    text = doc.read_text()
    assert "old" not in text and "| table |" in text and text.endswith("after\n")


def test_load_script_tiny() -> None:
    out = run(
        sys.executable, "bench.load", "--servers", "narrows", "--parts", "slow,poll,flood",
        "--slow", "20", "--poll", "20", "--poll-seconds", "0.5", "--flood", "150",
        "--duration", "2",
    )  # fmt: skip
    assert "still reading at the end: 20" in out  # flow control held every slow reader
    assert "answered 200: 40/40" in out and "growth first -> last wave" in out
    assert "healthy after (20 requests): 20/20 answered 200" in out
    assert "in-flight requests (50) answered 200: 50/50" in out
    assert "503" in out


def test_soak_script_tiny(tmp_path: Path) -> None:
    if not BENCH_PYTHON.exists() or shutil.which(str(BENCH_PYTHON)) is None:
        message = "the soak needs aiohttp and matplotlib from .bench-venv (bench/setup)"
        if IN_CI:  # .ci/run runs bench/setup: a missing venv there is a broken install step
            pytest.fail(message)
        pytest.skip(message)
    plot = tmp_path / "soak.png"
    out = run(
        str(BENCH_PYTHON), "bench.soak", "--duration", "3", "--http", "2", "--ws", "2",
        "--rooms", "2", "--members", "2", "--plot", str(plot),
    )  # fmt: skip
    assert "| http |" in out and "| layer |" in out and "Server RSS:" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
