"""Server memory per idle WebSocket connection: narrows against uvicorn and daphne.

For each server (raw ASGI echo app, one worker, fresh process every round): open and close
50 connections to warm it up, read the RSS of the server's process tree (VmRSS from
/proc/PID/status, children summed), open N idle connections from a client in its own
process (picows), wait for the server to settle, read the RSS again.
Per connection = (RSS after - RSS before) / N. Lower is better; target narrows <= 0.7x uvicorn.

    .bench-venv/bin/python -m bench.ws_memory [--conns 3000] [--rounds 2]
"""

from __future__ import annotations

import os
import sys

if not __package__:  # run as a file: put the repository root first on sys.path
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import json
import statistics
import subprocess
import time

from bench import _common
from bench._common import ECHO_APP, HOST, ROOT, MeasureError, ServerProcess

SERVERS = ["narrows", "uvicorn", "daphne", "granian", "hypercorn"]
DEFAULT = "narrows,uvicorn,daphne"
TARGETS = {"uvicorn": ("<=", 0.7)}


class Holder:
    """A ``bench._wsclient hold`` process keeping ``conns`` connections open."""

    def __init__(self, server: ServerProcess, conns: int, timeout: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench._wsclient", "hold", f"ws://{HOST}:{server.port}/",
             "--conns", str(conns)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.conns = conns
        self.timeout = timeout

    def opened(self) -> None:
        """Wait for the client's report; every connection must be open."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(5)
            tail = " | ".join(
                (self.proc.stderr.read() if self.proc.stderr else "").splitlines()[-2:]
            )
            raise MeasureError(f"client exited {self.proc.returncode}: {tail[-300:]}")
        report = json.loads(line)
        if report["connected"] != self.conns:
            raise MeasureError(
                f"expected {self.conns} open connections, got {report['connected']} "
                f"({report['failed']} failed, first: {report['error']})"
            )

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("\n")
                self.proc.stdin.flush()
                self.proc.wait(self.timeout)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def hold(server: ServerProcess, conns: int) -> Holder:
    holder = Holder(server, conns, timeout=30)
    try:
        holder.opened()
    except BaseException:
        holder.close()
        raise
    return holder


def per_connection(server: ServerProcess, conns: int, settle: float) -> float:
    """Bytes of server RSS per idle connection."""
    hold(server, min(50, conns)).close()
    time.sleep(settle)
    before = server.rss_kib()
    holder = hold(server, conns)
    try:
        time.sleep(settle)
        if not server.alive:
            raise MeasureError("the server exited while holding connections")
        after = server.rss_kib()
    finally:
        holder.close()
    print(
        f"  {server.name}: RSS {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB "
        f"with {conns} connections"
    )
    return (after - before) * 1024 / conns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conns", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2, help="each round restarts the servers")
    parser.add_argument("--settle", type=float, default=1.5, help="seconds before reading RSS")
    parser.add_argument("--servers", default=DEFAULT, help=f"among {','.join(SERVERS)}")
    _common.add_common_arguments(parser)
    args = parser.parse_args(argv)
    names = _common.parse_servers(args.servers, SERVERS)
    _common.install_cleanup()
    _common.exclusive(args)
    limit = _common.raise_nofile(args.conns * 2 + 1024)
    _common.header(
        "idle WebSocket connections: server RSS bytes per connection",
        [f"method    {args.conns} idle connections (picows client, own process), RSS of the "
         f"server tree from /proc/PID/status after minus before, / {args.conns}; "
         f"{args.rounds} rounds, fresh servers each round; open files limit {limit}"],
    )  # fmt: skip
    results: dict[str, list[float]] = {n: [] for n in names}
    errors: dict[str, str] = {}
    try:
        for number in range(args.rounds):
            servers = _common.start_servers(
                _common.spec(n, ECHO_APP) for n in names if n not in errors
            )
            shift = number % len(servers) if servers else 0
            for server in servers[shift:] + servers[:shift]:
                if server.alive:
                    try:
                        value = per_connection(server, args.conns, args.settle)
                    except MeasureError as exc:
                        server.fail(str(exc))
                    else:
                        results[server.name].append(value)
                        print(
                            f"  round {number + 1}/{args.rounds} {server.name:<18} "
                            f"{value:>10,.0f} B"
                        )
                if server.error:
                    errors[server.name] = server.error
            _common.stop_all()
        shown = []
        for name in names:  # one row per server, in the order asked for
            row = _common.ServerProcess(_common.spec(name, ECHO_APP))
            row.error = errors.get(name)
            shown.append(row)
        _common.report(
            shown, results, unit="bytes of server RSS per idle connection",
            higher_is_better=False, targets=TARGETS,
        )  # fmt: skip
        for name, values in results.items():
            if values:
                print(f"  {name}: {statistics.median(values) / 1024:.1f} KiB per connection")
    finally:
        _common.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
