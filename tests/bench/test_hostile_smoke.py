"""``bench/hostile.py`` keeps working: a few cases at 1/20 size against narrows alone.

Run as a user runs it (a subprocess, the real command line, its own server processes); the
WebSocket cases must get their strict answer. No memory figure is asserted beyond the
case's own bound: figures come from the full run (docs/reliability.md).
"""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

CASES = ["ws-ping-flood", "ws-empty-fragments", "ws-subprotocol-injection", "ws-denial-injection"]


def test_hostile_script_quick_run_against_narrows() -> None:
    bench_python = ROOT / ".bench-venv" / "bin" / "python"
    python = str(bench_python) if bench_python.exists() else sys.executable
    args = ["-m", "bench.hostile", "--quick", "--no-lock", "--servers", "narrows"]
    run = subprocess.run(
        [python, *args, "--cases", ",".join(CASES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = {line.split("`")[1]: line for line in run.stdout.splitlines() if line.startswith("| ")
            and "`" in line}  # fmt: skip
    assert set(rows) == set(CASES), run.stdout
    for case, row in rows.items():
        assert "✗" not in row, f"{case}: {row}"
    assert f"| | **strict answers** | | | {len(CASES)}/{len(CASES)} |" in run.stdout
