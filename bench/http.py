"""Hello-world HTTP: narrows against uvicorn, granian, daphne and hypercorn, one run.

Every server serves ``bench.apps:hello`` with one worker on its own free loopback port;
each gets a warm-up, then ``wrk -t1 -c64 -dNs`` rounds interleaved across the servers
(keep-alive connections). Prints requests/s per round, the medians and narrows/peer ratios.

    .bench-venv/bin/python -m bench.http [--rounds 3] [--duration 5] [--servers a,b]
"""

from __future__ import annotations

import os
import sys

if not __package__:  # run as a file: bench/ first on sys.path would shadow the stdlib ``http``
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import re
import shutil
import socket
import subprocess

from bench import _common
from bench._common import HELLO_APP, HOST, MeasureError, Measurement, ServerProcess

SERVERS = ["narrows", "uvicorn", "granian", "daphne", "hypercorn", "ceiling"]
#: Run only when named: narrows with its compiled HTTP core switched off.
OPTIONAL = ["narrows-pure"]
TARGETS = {"uvicorn": (">=", 2.0), "granian": (">=", 1.2)}


def wrk(server: ServerProcess, duration: float, connections: int) -> Measurement:
    """Requests/s of one wrk run; errors and non-2xx answers make the run invalid."""
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
        f"http://{HOST}:{server.port}/",
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    except subprocess.TimeoutExpired:
        raise MeasureError(f"wrk did not finish in {duration + 60:.0f}s") from None
    out = done.stdout + done.stderr
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if done.returncode != 0 or rate is None:
        raise MeasureError(f"wrk failed (exit {done.returncode}): {out.strip()[-300:]}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if bad:
        raise MeasureError(f"{bad.group(1)} non-2xx responses")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors and sum(int(n) for n in errors.groups()) > 0:
        print(f"  note: {server.name}: {errors.group(0)}")
    if not server.alive:
        raise MeasureError("the server exited during the run")
    total = re.search(r"(\d+) requests in", out)
    return Measurement(float(rate.group(1)), int(total.group(1)) if total else 0)


def check_hello(server: ServerProcess) -> None:
    """One real request: the server must answer 200 with the hello body."""
    request = f"GET / HTTP/1.1\r\nHost: {HOST}:{server.port}\r\nConnection: close\r\n\r\n"
    with socket.create_connection((HOST, server.port), timeout=10) as sock:
        sock.sendall(request.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if not data.startswith(b"HTTP/1.1 200") or not data.endswith(b"Hello, world"):
        raise MeasureError(f"expected 200 with 'Hello, world', got {data[:120]!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk per server first")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated; 'ceiling' is a bare uvloop+httptools protocol (not ASGI); "
        "'narrows-pure' is narrows with NARROWS_PURE_PYTHON=1 (its Python HTTP core)",
    )
    _common.add_common_arguments(parser)
    args = parser.parse_args(argv)
    names = _common.parse_servers(args.servers, SERVERS + OPTIONAL)
    _common.install_cleanup()
    _common.exclusive(args)
    _common.header(
        "HTTP hello world: requests/s",
        [f"method    wrk -t1 -c{args.connections} -d{args.duration:g}s, keep-alive, "
         f"{args.rounds} interleaved rounds after {args.warmup:g}s warm-up, 1 worker each"],
    )  # fmt: skip
    if shutil.which("wrk") is None:
        print("wrk: not installed (apt-get install wrk); nothing measured")
        return 1
    servers = _common.start_servers(
        _common.spec(_common.CEILING_HTTP if n == "ceiling" else n, HELLO_APP) for n in names
    )
    try:
        for server in servers:
            if not server.alive:
                continue
            try:
                check_hello(server)
                wrk(server, args.warmup, args.connections)
            except (OSError, MeasureError) as exc:
                server.fail(f"warm-up failed: {exc}")
        results, cpu = _common.interleaved_rounds(
            servers, args.rounds, lambda s: wrk(s, args.duration, args.connections)
        )
        _common.report(
            servers, cpu, unit="server CPU time per request in microseconds (user+system)",
            higher_is_better=False, decimals=1, footer=False,
        )  # fmt: skip
        _common.report(
            servers, results, unit="requests/s", higher_is_better=True, targets=TARGETS,
            footer=False,
        )  # fmt: skip
        _common.round_by_round(results)
        print(f"reproduce {_common.reproduce_command()}", flush=True)
    finally:
        _common.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
