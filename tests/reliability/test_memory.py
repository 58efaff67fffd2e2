"""No memory growth: after a warm-up, further waves of long polls, slow readers and WebSocket
sessions leave no Python allocations behind in the server.

tracemalloc traces every allocation made with a narrows frame on the stack (the in-process
clients' own allocations are filtered out); the net growth over the measured waves must stay
under a fixed bound that one wave's per-connection objects would exceed many times over.
RSS is not used here: the allocator keeps freed arenas, which ``bench/load.py`` shows.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from tests.server.http.serving import port_of, serving

WAVE = 100
BOUND = 128 * 1024  # bytes; one leaked 1 KiB object per connection: 200 KiB over two waves
ONLY_NARROWS = [tracemalloc.Filter(True, "*/src/narrows/*", all_frames=True)]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    if scope["path"] == "/poll":
        await asyncio.sleep(0.3)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    if scope["path"] == "/big":
        for _ in range(16):
            await send({"type": "http.response.body", "body": b"x" * 16384, "more_body": True})
    await send({"type": "http.response.body", "body": b"ok"})


async def long_poll(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /poll HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await reader.read()).startswith(b"HTTP/1.1 200 ")
    writer.close()


async def slow_reader(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=4096)
    writer.transport.get_extra_info("socket").setsockopt(1, 8, 4096)  # SOL_SOCKET, SO_RCVBUF
    writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.read(4096)
    await asyncio.sleep(0.3)  # the server is blocked on us meanwhile
    writer.transport.abort()  # and we leave mid-response


async def websocket_session(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(b"memory-test-key!")
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        + bytes((0x81, 0x82)) + b"\0\0\0\0hi"
        + bytes((0x88, 0x82)) + b"\0\0\0\0" + (1000).to_bytes(2, "big")
    )  # fmt: skip
    assert (await reader.read()).startswith(b"HTTP/1.1 101 ")
    writer.close()


async def growth(client: Callable[[int], Awaitable[None]], waves: int = 2) -> int:
    async with serving(app) as server:
        port = port_of(server)
        state = server.state
        assert state is not None

        async def wave() -> None:
            await asyncio.gather(*(client(port) for _ in range(WAVE)))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while (state.connections or state.tasks) and loop.time() < deadline:
                await asyncio.sleep(0.02)
            assert (len(state.connections), len(state.tasks)) == (0, 0)

        await wave()  # warm-up: caches, container high-water sizes
        tracemalloc.start(10)
        try:
            gc.collect()
            before = tracemalloc.take_snapshot().filter_traces(ONLY_NARROWS)
            for _ in range(waves):
                await wave()
            gc.collect()
            after = tracemalloc.take_snapshot().filter_traces(ONLY_NARROWS)
        finally:
            tracemalloc.stop()
    stats = after.compare_to(before, "traceback")
    net = sum(stat.size_diff for stat in stats)
    print(f"net growth over {waves} waves of {WAVE}: {net} bytes")
    if net > BOUND:
        for stat in stats[:5]:
            print(stat, *stat.traceback.format()[-6:], sep="\n")
    return net


async def test_long_polls_leave_nothing_behind() -> None:
    assert await growth(long_poll) < BOUND


async def test_slow_readers_that_leave_mid_response_leave_nothing_behind() -> None:
    assert await growth(slow_reader) < BOUND


async def test_websocket_sessions_leave_nothing_behind() -> None:
    assert await growth(websocket_session) < BOUND
