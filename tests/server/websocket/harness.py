"""Run the real narrows server (HTTP + WebSocket) in the test's event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from narrows.server.config import Config
from narrows.server.server import Server
from narrows.types import ASGIApp


class Running:
    def __init__(self, server: Server, port: int, task: asyncio.Task[int]) -> None:
        self.server = server
        self.port = port
        self.task = task
        self.stopped = False

    async def stop(self) -> int:
        """What SIGTERM does: graceful shutdown; returns serve()'s exit code."""
        if not self.stopped:
            self.stopped = True
            self.server.handle_exit()
        return await asyncio.wait_for(asyncio.shield(self.task), 30)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def connections(self) -> list[Any]:
        assert self.server.state is not None
        return list(self.server.state.connections)


@asynccontextmanager
async def running(app: ASGIApp, **options: Any) -> AsyncIterator[Running]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    port = sock.getsockname()[1]
    options.setdefault("lifespan", "off")
    options.setdefault("graceful_timeout", 5.0)
    server = Server(Config(**options), app)
    task = asyncio.create_task(server.serve([sock]))
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
    handle = Running(server, port, task)
    try:
        yield handle
    finally:
        await handle.stop()


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)
