"""Keep the benchmark scripts working: each runs once in a tiny mode (1 round, <= 1 s).

With the peers' venv (``bench/setup``) the scripts run in it, against narrows and uvicorn;
without it they run in this interpreter against narrows alone. Either way every server
asked for must end in a figure or in an explicit "NAME: not available (reason)" line, and a
server that can start here must give a figure. No speed is asserted: figures come from
``bench/run``, not from tests. The four scripts run at the same time (they mostly wait on
process start-up) so the whole file stays well under 30 s.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import IN_CI, ROOT, default_sigint

BENCH_PYTHON = ROOT / ".bench-venv" / "bin" / "python"
PEERS = BENCH_PYTHON.exists()
PYTHON = str(BENCH_PYTHON) if PEERS else sys.executable
SERVERS = ["narrows", "uvicorn"] if PEERS else ["narrows"]
CONSUMER_ROWS = {
    "narrows": ("narrows (narrows consumer)", "narrows.generic.websocket"),
    "uvicorn": ("uvicorn (Channels consumer)", "channels"),
}
#: (marked processes before Ctrl+C, marked processes left after, the run's output)
Interrupted = tuple[int, list[int], str]
NEEDS = {"narrows": "narrows.server.cli", "uvicorn": "uvicorn"}

TINY = {
    "http": ["bench.http", "--rounds", "1", "--duration", "1", "--warmup", "1"],
    "websocket": ["bench.websocket", "--rounds", "1", "--duration", "0.5", "--warmup", "0.2"],
    "consumer": [
        "bench.websocket", "--consumer", "--rounds", "1", "--duration", "0.5", "--warmup", "0.2",
    ],
    "memory": ["bench.ws_memory", "--conns", "40", "--rounds", "1", "--settle", "0.3"],
}  # fmt: skip


@pytest.fixture(scope="module")
def runs() -> Iterator[tuple[dict[str, str], Interrupted]]:
    """Run the four scripts in tiny mode and a fifth that gets Ctrl+C, all at once."""
    procs = {}
    for key, args in TINY.items():
        if key == "http" and shutil.which("wrk") is None:
            continue
        procs[key] = subprocess.Popen(
            [PYTHON, "-m", *args, "--no-lock", "--servers", ",".join(SERVERS)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    marker = f"NARROWS_BENCH_SMOKE={uuid.uuid4().hex}"
    name, value = marker.split("=")
    victim = subprocess.Popen(
        [PYTHON, "-m", "bench.websocket", "--rounds", "50", "--duration", "5", "--no-lock",
         "--servers", SERVERS[-1]],
        cwd=ROOT, env={**os.environ, name: value}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
        preexec_fn=default_sigint,
    )  # fmt: skip
    results = {}
    try:
        interrupted = interrupt_run(victim, marker)
        for key, proc in procs.items():
            output, _ = proc.communicate(timeout=90)
            assert proc.returncode == 0, f"{key} exited {proc.returncode}:\n{output}"
            results[key] = output
    finally:
        for proc in [*procs.values(), victim]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
    yield results, interrupted


@pytest.fixture(scope="module")
def outputs(runs: tuple[dict[str, str], Interrupted]) -> dict[str, str]:
    return runs[0]


@pytest.fixture(scope="module")
def interrupted(
    runs: tuple[dict[str, str], tuple[int, list[int], str]],
) -> tuple[int, list[int], str]:
    return runs[1]


def startable(module: str) -> bool:
    """Whether ``module`` can be imported by the interpreter that runs the benchmarks."""
    code = f"import importlib.util as u, sys; sys.exit(u.find_spec({module!r}) is None)"
    return subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True).returncode == 0


def check_output(output: str, key: str, rows: dict[str, str]) -> None:
    """The reproduce line is printed; every row has a positive median or says why it is
    not available; a server whose code is importable here must have its figure."""
    command = " ".join(["-m", *TINY[key], "--no-lock", "--servers", ",".join(SERVERS)])
    assert f"reproduce cd {ROOT} && " in output and command in output, output
    table = output.rsplit("\nresults: ", 1)[1]  # the last table: rates (or memory)
    if key != "memory":
        assert "\nresults: server CPU time per " in output, output
    for name, module in rows.items():
        figure = re.search(rf"^{re.escape(name)} +(-?[\d,]+) +\S+ +[-\d, ]+$", table, re.M)
        missing = re.search(rf"^{re.escape(name)}: not available \((.+)\)$", table, re.M)
        assert figure or missing, f"no row for {name}:\n{output}"
        if figure:
            if key != "memory":  # memory deltas of 40 connections may be ~0
                assert int(figure.group(1).replace(",", "")) > 0, output
        elif startable(module):
            pytest.fail(f"{name} is installed but gave no figure: {missing.group(1)}\n{output}")


def test_http_tiny(outputs: dict[str, str]) -> None:
    if "http" not in outputs:
        message = "wrk is not installed (apt-get install wrk; .ci/run does)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    check_output(outputs["http"], "http", {n: NEEDS[n] for n in SERVERS})
    if PEERS:
        assert re.search(r"^target narrows/uvicorn >= 2.0x: ", outputs["http"], re.M)


def test_websocket_echo_tiny(outputs: dict[str, str]) -> None:
    output = outputs["websocket"]
    assert re.search(r"^client    (picows|websockets) ", output, re.M), output
    check_output(output, "websocket", {n: NEEDS[n] for n in SERVERS})


def test_consumer_echo_tiny(outputs: dict[str, str]) -> None:
    check_output(outputs["consumer"], "consumer", dict(CONSUMER_ROWS[n] for n in SERVERS))


def test_ws_memory_tiny(outputs: dict[str, str]) -> None:
    output = outputs["memory"]
    check_output(output, "memory", {n: NEEDS[n] for n in SERVERS})
    assert "with 40 connections" in output or "not available" in output, output


def test_scripts_are_executable() -> None:
    for script in ("setup", "run"):
        path = Path(ROOT, "bench", script)
        assert path.stat().st_mode & 0o111, f"bench/{script} is not executable"
        assert subprocess.run(["bash", "-n", str(path)]).returncode == 0


def processes_with(marker: str) -> list[int]:
    """PIDs whose environment carries ``marker`` (servers inherit it from the bench run)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def interrupt_run(proc: subprocess.Popen[str], marker: str) -> Interrupted:
    """Once ``proc``'s servers are up, SIGINT its process group (what Ctrl+C does); return
    how many marked processes there were before, which are left after, and the output."""
    assert proc.stdout is not None
    output = []
    for line in proc.stdout:  # servers are up once the client line is printed
        output.append(line)
        if line.startswith("client "):
            break
    time.sleep(1)
    before = len(processes_with(marker))
    os.killpg(proc.pid, signal.SIGINT)
    output.append(proc.stdout.read())
    proc.wait(30)
    deadline = time.monotonic() + 10
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    return before, processes_with(marker), "".join(output)


def test_ctrl_c_stops_every_server(interrupted: Interrupted) -> None:
    before, left, output = interrupted
    assert before >= 2, f"expected the run and its server:\n{output}"
    assert left == [], output
