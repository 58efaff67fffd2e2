"""bench/django.py keeps working: one tiny round of the JSON workload (no speed asserted).

With the peers' venv (``bench/setup``) it runs there against narrows and uvicorn + Django's
handler; without it, here against narrows alone. Every server asked for ends in a table row
or an explicit "not available" line, and the bare-loop ceiling is measured.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tests.helpers import IN_CI, ROOT

BENCH_PYTHON = ROOT / ".bench-venv" / "bin" / "python"


@pytest.mark.timeout(300)
def test_bench_django_tiny_run() -> None:
    if shutil.which("wrk") is None:
        if IN_CI:
            pytest.fail("wrk is not installed (.ci/run installs it)")
        pytest.skip("wrk is not installed")
    peers = BENCH_PYTHON.exists()
    python = str(BENCH_PYTHON) if peers else sys.executable
    servers = "narrows,uvicorn" if peers else "narrows"
    done = subprocess.run(
        [python, "-m", "bench.django", "--rounds", "1", "--duration", "1", "--warmup", "1",
         "--no-lock", "--servers", servers, "--workloads", "json"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "json: requests/s (median, worst of 1 rounds)" in out, out[-3000:]
    for name in servers.split(","):
        # the table's row: the name, then the median (not "narrows / uvicorn, round by round")
        row = [line for line in out.splitlines() if re.match(rf"{name} +[\d,]+ ", line)]
        assert row, out[-3000:]
    if peers:
        assert "narrows / uvicorn, round by round: median " in out, out[-3000:]
    assert "(ceiling: WSGIHandler, bare loop)" in out
    assert "reproduce " in out
