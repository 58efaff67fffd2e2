"""Run a real narrows ``Server`` in the test's event loop on real sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from narrows.server.config import Config
from narrows.server.server import Server
from narrows.types import ASGIApp


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, **options: Any) -> AsyncIterator[Server]:
    """Serve ``app`` (default: TCP on 127.0.0.1, a free port) until the block ends."""
    options.setdefault("lifespan", "off")
    options.setdefault("graceful_timeout", 5.0)
    if not any(k in options for k in ("unix_socket", "endpoints", "file_descriptors")):
        options.setdefault("host", "127.0.0.1")
        options.setdefault("port", 0)
    server = Server(Config(**options), app)
    task = asyncio.create_task(server.serve())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not server.started:
        if task.done():
            task.result()  # raise the startup error
            raise RuntimeError("server stopped before it started")
        if loop.time() > deadline:
            raise TimeoutError("server did not start")
        await asyncio.sleep(0.01)
    try:
        yield server
    finally:
        server.handle_exit()
        await asyncio.wait_for(task, 30)


def port_of(server: Server) -> int:
    return int(server.bound[0].sock.getsockname()[1])


async def request(port_or_path: int | str, raw: bytes, *, read_until_close: bool = True) -> bytes:
    """Send raw bytes, return everything received until the server closes (or 5 s)."""
    if isinstance(port_or_path, int):
        reader, writer = await asyncio.open_connection("127.0.0.1", port_or_path)
    else:
        reader, writer = await asyncio.open_unix_connection(port_or_path)
    writer.write(raw)
    await writer.drain()
    data = b""
    try:
        if read_until_close:
            data = await asyncio.wait_for(reader.read(), 5)
        else:
            data = await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()
    return data
