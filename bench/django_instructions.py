"""CPU instructions per Django page request, per thread, counted by callgrind.

Where ``bench/django.py`` measures requests/s, this counts the work: each server runs the
``page`` workload (bench/django_site) under ``valgrind --tool=callgrind --separate-threads=yes``
with instrumentation off; after a warm-up it is switched on for exactly ``--requests``
requests over ``--connections`` keep-alive connections, then off. Instructions per request
are given in total and split between the main thread (the event loop) and the others (the
pool threads; for uvicorn, the threads ``sync_to_async`` runs Django's sync parts in). The
ceiling is Django's ``WSGIHandler`` called in a bare loop (bench/django_ceiling.py): its
figure is the difference between two runs of different lengths, divided by the difference.

A server's total against the ceiling's is the work it adds to Django's; requests/s against
the ceiling's (bench/django.py) also shows what instructions do not: the cost of two threads
handing the GIL to each other across cores.

    .bench-venv/bin/python -m bench.django_instructions [--requests 200] [--servers LIST]
"""

from __future__ import annotations

import os
import sys

if not __package__:  # run as a file: make ``bench`` importable
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import asyncio
import glob
import re
import shutil
import subprocess
import tempfile

from bench import _common
from bench._common import HOST
from bench.django import SERVERS, WORKLOADS
from bench.instructions import _callgrind_control, _wait_listening

WORKLOAD = WORKLOADS["page"]


async def _client(port: int, count: int) -> None:
    request = f"GET {WORKLOAD.path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"content-length: *(\d+)", head, re.I)
            if not head.startswith(b"HTTP/1.1 200") or length is None:
                raise RuntimeError(f"expected a 200 with a Content-Length, got {head[:200]!r}")
            body = await reader.readexactly(int(length.group(1)))
            if WORKLOAD.marker not in body:
                raise RuntimeError(f"the page lacks {WORKLOAD.marker!r}")
    finally:
        writer.close()


async def _drive(port: int, requests: int, connections: int) -> None:
    share, extra = divmod(requests, connections)
    await asyncio.gather(
        *(_client(port, share + (1 if i < extra else 0)) for i in range(connections))
    )


def _totals(out_dir: str) -> dict[str, int]:
    """Instructions per thread ("1", "2", ...) from callgrind's per-thread files."""
    threads: dict[str, int] = {}
    for path in glob.glob(os.path.join(out_dir, "callgrind.out*")):
        with open(path) as data:
            text = data.read()
        found = [int(n) for n in re.findall(r"^(?:summary|totals): (\d+)", text, re.M)]
        thread = re.search(r"^thread: (\d+)", text, re.M)
        if found:
            key = thread.group(1) if thread else "1"
            threads[key] = threads.get(key, 0) + max(found)
    return threads


def measure_server(name: str, requests: int, connections: int) -> dict[str, float]:
    spec = SERVERS[name]
    missing = spec.missing()
    if missing:
        raise RuntimeError(missing)
    port = _common.free_port()
    out_dir = tempfile.mkdtemp(prefix="callgrind-django-")
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
        f"--callgrind-out-file={os.path.join(out_dir, 'callgrind.out')}",
        sys.executable, *spec.build(spec.app, port),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": _common.ROOT}
    with open(os.path.join(out_dir, "log"), "wb") as log:
        proc = subprocess.Popen(
            command, cwd=_common.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_listening(proc, port)
        asyncio.run(_drive(port, 50, connections))  # imports, templates, first connections
        _callgrind_control("-i", "on", str(proc.pid))
        asyncio.run(_drive(port, requests, connections))
        _callgrind_control("-i", "off", str(proc.pid))
    finally:
        proc.terminate()
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    threads = _totals(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    if not threads:
        raise RuntimeError("callgrind wrote no totals")
    return {f"thread {k}": v / requests for k, v in sorted(threads.items()) if v}


def measure_ceiling(requests: int) -> dict[str, float]:
    """The bare WSGIHandler loop: (instructions of a long run - of a short one) / difference."""
    short, long = 50, 50 + requests
    counts = []
    for count in (short, long):
        out_dir = tempfile.mkdtemp(prefix="callgrind-ceiling-")
        done = subprocess.run(
            ["valgrind", "--tool=callgrind",
             f"--callgrind-out-file={os.path.join(out_dir, 'callgrind.out')}",
             sys.executable, "-m", "bench.django_ceiling", WORKLOAD.settings, WORKLOAD.path,
             "--requests", str(count)],
            capture_output=True, text=True, timeout=1800, cwd=_common.ROOT,
            env={**os.environ, "PYTHONPATH": _common.ROOT},
        )  # fmt: skip
        threads = _totals(out_dir)
        shutil.rmtree(out_dir, ignore_errors=True)
        if done.returncode != 0 or not threads:
            raise RuntimeError(f"ceiling run failed: {(done.stdout + done.stderr)[-400:]}")
        counts.append(sum(threads.values()))
    return {"thread 1": (counts[1] - counts[0]) / requests}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--servers", default="narrows,uvicorn,ceiling")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind: not installed (apt-get install valgrind); nothing measured")
        return 1
    print(
        f"instructions per Django page request (callgrind, {args.requests} requests over "
        f"{args.connections} keep-alive connections, after 50 warm-up requests)"
    )
    os.environ["DJANGO_SETTINGS_MODULE"] = WORKLOAD.settings
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="narrows-bench-django-") as tmp:
        from bench.django_site.database import make_database

        os.environ["BENCH_DJANGO_DB"] = os.path.join(tmp, "bench.sqlite3")
        make_database(os.environ["BENCH_DJANGO_DB"])
        for name in args.servers.split(","):
            try:
                if name == "ceiling":
                    threads = measure_ceiling(args.requests)
                else:
                    threads = measure_server(name, args.requests, args.connections)
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                print(f"  {name:10s} not measured: {exc}")
                continue
            figures[name] = total = sum(threads.values())
            main_thread = threads.get("thread 1", 0.0)
            others = len(threads) - 1
            split = f"main thread {main_thread:,.0f}" + (
                f", {others} other threads {total - main_thread:,.0f}" if others else ""
            )
            print(f"  {name:10s} {total:>12,.0f}  ({split})", flush=True)
    ceiling = figures.get("ceiling")
    if ceiling:
        for name, value in figures.items():
            if name != "ceiling":
                print(f"  {name} / ceiling: {value / ceiling:.3f}x the instructions")
    print(f"reproduce {_common.reproduce_command()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
