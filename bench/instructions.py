"""CPU instructions per hello-world request, counted by callgrind: stable on a busy machine.

Each server runs under ``valgrind --tool=callgrind`` with instrumentation off; after a warm-up,
it is switched on (``callgrind_control -i on``) for exactly ``--requests`` requests
spread over ``--connections`` keep-alive connections driven from this process, then off
again. Instructions counted in the server process, divided by the requests, are the figure;
unlike requests/s they barely move when other work shares the cores, so they judge a
change on a shared machine. Wall-clock speed still needs ``bench/http.py``.

    .bench-venv/bin/python -m bench.instructions [--requests 4000] [--servers narrows,uvicorn]
        [--request browser]
"""

from __future__ import annotations

import os
import sys

if not __package__:  # run as a file: bench/ first on sys.path would shadow the stdlib ``http``
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import asyncio
import re
import shutil
import subprocess
import tempfile
import time

from bench import _common
from bench._common import HELLO_APP, HOST

SERVERS = ["narrows", "uvicorn", "granian", "ceiling"]  # and "narrows-pure" when named
#: The request heads ``--request`` picks: wrk's (a Host header only) and a browser's.
REQUESTS = {
    "wrk": f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode(),
    "browser": (
        f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: keep-alive\r\n"
        'sec-ch-ua: "Chromium";v="131", "Not_A Brand";v="24"\r\nsec-ch-ua-mobile: ?0\r\n'
        'sec-ch-ua-platform: "Linux"\r\nUpgrade-Insecure-Requests: 1\r\n'
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36\r\n"
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
        "Sec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\n"
        "Sec-Fetch-Dest: document\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n"
        "Accept-Language: en-GB,en;q=0.9\r\nCookie: csrftoken=abc; sessionid=def\r\n\r\n"
    ).encode(),
}


async def _client(port: int, count: int, request: bytes) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            if not head.startswith(b"HTTP/1.1 200") or length is None:
                raise RuntimeError(f"unexpected response {head[:100]!r}")
            await reader.readexactly(int(length.group(1)))
    finally:
        writer.close()


async def _drive(port: int, requests: int, connections: int, request: bytes) -> None:
    share, extra = divmod(requests, connections)
    await asyncio.gather(
        *(_client(port, share + (1 if i < extra else 0), request) for i in range(connections))
    )


def _callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


def measure(
    name: str,
    requests: int,
    connections: int,
    warmup: int,
    keep: str | None = None,
    request: bytes = REQUESTS["wrk"],
) -> float:
    """Instructions per request of one server (its main process only)."""
    server = _common.spec(_common.CEILING_HTTP if name == "ceiling" else name, HELLO_APP)
    missing = server.missing()
    if missing:
        raise RuntimeError(missing)
    port = _common.free_port()
    out_dir = tempfile.mkdtemp(prefix="callgrind-")
    out_file = os.path.join(out_dir, "callgrind.out")
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out_file}",
        sys.executable, *server.build(server.app, port),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": _common.ROOT, **dict(server.env)}
    with open(os.path.join(out_dir, "log"), "wb") as log:
        proc = subprocess.Popen(
            command, cwd=_common.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_listening(proc, port)
        asyncio.run(_drive(port, warmup, connections, request))
        _callgrind_control("-i", "on", str(proc.pid))
        asyncio.run(_drive(port, requests, connections, request))
        _callgrind_control("-i", "off", str(proc.pid))
    finally:
        proc.terminate()
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    total = 0
    for entry in os.listdir(out_dir):
        if entry.startswith("callgrind.out"):
            with open(os.path.join(out_dir, entry)) as data:
                found = re.findall(r"^(?:summary|totals): (\d+)", data.read(), re.M)
            total = max([total, *map(int, found)])
    if not total:
        raise RuntimeError(f"callgrind wrote no totals (see {out_dir})")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(out_file, os.path.join(keep, f"callgrind.{name}.out"))
    shutil.rmtree(out_dir, ignore_errors=True)
    return total / requests


def _wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float = 300) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("server did not start listening")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument(
        "--request",
        choices=sorted(REQUESTS),
        default="wrk",
        help="the request head sent: wrk's (Host only, the default) or a browser's (15 headers)",
    )
    parser.add_argument(
        "--keep", metavar="DIR", help="keep each server's callgrind.out in DIR (callgrind_annotate)"
    )
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind: not installed (apt-get install valgrind); nothing measured")
        return 1
    print(
        f"instructions per hello-world request ({args.request}'s head; callgrind, "
        f"{args.requests} requests over "
        f"{args.connections} keep-alive connections, after {args.warmup} warm-up requests)"
    )
    figures: dict[str, float] = {}
    for name in args.servers.split(","):
        try:
            figures[name] = measure(
                name,
                args.requests,
                args.connections,
                args.warmup,
                args.keep,
                REQUESTS[args.request],
            )
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            print(f"  {name:10s} not measured: {exc}")
            continue
        print(f"  {name:10s} {figures[name]:>10,.0f}")
    base = figures.get("narrows")
    if base:
        for name, value in figures.items():
            if name != "narrows":
                print(f"  narrows / {name}: {base / value:.2f}x the instructions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
