"""The WebSocket load client, run in its own process so it never shares a core's time
slice with the server it measures.

Library: picows (Cython, callback-based, ~120k msg/s on one core here), so the client is
not the bottleneck for servers doing 10-50k msg/s. Where picows is missing (the smoke
test in the plain dev venv) it falls back to the ``websockets`` asyncio client and says so.
No compression is offered by either client, so every server echoes plain frames.

    python -m bench._wsclient echo ws://127.0.0.1:PORT/ --conns 32 --duration 5
        ping-pong: each connection sends a small text message, waits for the echo, sends
        the next; prints one JSON line {"messages", "seconds", "rate", "errors", "client"}.
    python -m bench._wsclient hold ws://127.0.0.1:PORT/ --conns 3000
        opens N idle connections, prints {"connected", "failed", "error"} and keeps them
        open until a line (or EOF) arrives on stdin, then closes them and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from importlib.metadata import version
from typing import Any

try:
    import picows
except ImportError:  # the plain dev venv: fall back to websockets
    picows = None

PAYLOAD = b"narrows-bench-16"  # 16 bytes of ASCII text


class Stats:
    def __init__(self) -> None:
        self.counting = False
        self.running = True
        self.messages = 0
        self.total = 0  # every echo, warm-up included: the server's work during the run
        self.errors = 0
        self.first_error = ""

    def error(self, text: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or text


def client_name() -> str:
    if picows is not None:
        return f"picows {version('picows')}"
    return f"websockets {version('websockets')} (picows not installed)"


if picows is not None:

    class EchoListener(picows.WSListener):  # type: ignore[misc]
        def __init__(self, stats: Stats) -> None:
            self.stats = stats
            self.transport: Any = None
            self.closed = asyncio.get_running_loop().create_future()

        def on_ws_connected(self, transport: Any) -> None:
            self.transport = transport

        def start(self) -> None:
            self.transport.send(picows.WSMsgType.TEXT, PAYLOAD)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            stats = self.stats
            if frame.msg_type == picows.WSMsgType.TEXT:
                if frame.get_payload_as_bytes() != PAYLOAD:
                    stats.error(f"echo mismatch: {frame.get_payload_as_bytes()[:40]!r}")
                else:
                    stats.total += 1
                    if stats.counting:
                        stats.messages += 1
                if stats.running:
                    transport.send(picows.WSMsgType.TEXT, PAYLOAD)
            elif frame.msg_type == picows.WSMsgType.CLOSE:
                if stats.running:
                    stats.error(f"server closed: {frame.get_close_code()}")
                transport.send_close(frame.get_close_code())
                transport.disconnect()

        def on_ws_disconnected(self, transport: Any) -> None:
            if self.stats.running:
                self.stats.error("disconnected by the server")
            if not self.closed.done():
                self.closed.set_result(None)

    async def _connect_picows(url: str, stats: Stats) -> Any:
        _transport, listener = await picows.ws_connect(lambda: EchoListener(stats), url)
        return listener


async def echo(url: str, conns: int, duration: float, warmup: float) -> dict[str, Any]:
    stats = Stats()
    if picows is not None:
        listeners = await asyncio.gather(*(_connect_picows(url, stats) for _ in range(conns)))
        for listener in listeners:
            listener.start()
        await asyncio.sleep(warmup)
        stats.counting = True
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.sleep(duration)
        stats.counting = False
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        stats.running = False
        for listener in listeners:
            listener.transport.disconnect()
        await asyncio.wait([listener.closed for listener in listeners], timeout=5)
    else:
        seconds, cpu = await _echo_websockets(url, conns, duration, warmup, stats)
    return {
        "messages": stats.messages,
        "total": stats.total,
        "seconds": seconds,
        "rate": stats.messages / seconds,
        "errors": stats.errors,
        "first_error": stats.first_error,
        "client_cpu_us": cpu * 1e6 / max(1, stats.messages),
        "client": client_name(),
    }


async def _echo_websockets(
    url: str, conns: int, duration: float, warmup: float, stats: Stats
) -> tuple[float, float]:
    from websockets.asyncio.client import connect

    sockets = await asyncio.gather(*(connect(url, compression=None) for _ in range(conns)))
    text = PAYLOAD.decode()

    async def pingpong(ws: Any) -> None:
        while stats.running:
            await ws.send(text)
            reply = await ws.recv()
            if reply != text:
                stats.error(f"echo mismatch: {reply[:40]!r}")
            else:
                stats.total += 1
                if stats.counting:
                    stats.messages += 1

    tasks = [asyncio.create_task(pingpong(ws)) for ws in sockets]
    await asyncio.sleep(warmup)
    stats.counting = True
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.sleep(duration)
    stats.counting = False
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    stats.running = False
    await asyncio.wait(tasks, timeout=5)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return seconds, cpu


async def hold(url: str, conns: int, parallel: int) -> None:
    """Open ``conns`` idle connections (``parallel`` handshakes at a time) and keep them."""
    stats = Stats()
    opened: list[Any] = []
    failed = 0
    first_error = ""
    gate = asyncio.Semaphore(parallel)

    async def open_one() -> None:
        nonlocal failed, first_error
        async with gate:
            try:
                if picows is not None:
                    opened.append(await _connect_picows(url, stats))
                else:
                    from websockets.asyncio.client import connect

                    opened.append(await connect(url, compression=None, ping_interval=None))
            except Exception as exc:
                failed += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"

    await asyncio.gather(*(open_one() for _ in range(conns)))
    report = {"connected": len(opened), "failed": failed, "error": first_error}
    print(json.dumps(report), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    stats.running = False
    if picows is not None:
        for listener in opened:
            listener.transport.disconnect()
    else:
        await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="WebSocket load client for bench/")
    parser.add_argument("mode", choices=["echo", "hold"])
    parser.add_argument("url")
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--parallel", type=int, default=100)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.conns + 256
    if soft < wanted and (hard == resource.RLIM_INFINITY or hard >= wanted):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    if args.mode == "echo":
        result = runner(echo(args.url, args.conns, args.duration, args.warmup))
        print(json.dumps(result), flush=True)
    else:
        runner(hold(args.url, args.conns, args.parallel))


if __name__ == "__main__":
    main()
