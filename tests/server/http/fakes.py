"""A fake transport and response reader for protocol tests without sockets."""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field
from typing import Any

import httptools

from narrows.server.config import Config
from narrows.server.http.protocol import HTTPProtocol, ProtocolContext
from narrows.server.state import ServerState
from narrows.types import ASGIApp


class FakeTransport(asyncio.Transport):
    """Records writes; supports the flow-control calls the protocol makes.

    Incoming bytes reach the protocol as they do from a real event loop: ``feed`` queues
    them and each chunk is delivered by its own ``loop.call_soon`` callback (outside any
    task), only while reading is not paused.
    """

    def __init__(
        self,
        peer: tuple[str, int] | None = ("127.0.0.1", 51000),
        sock: tuple[str, int] | str = ("127.0.0.1", 8000),
        tls: bool = False,
    ) -> None:
        super().__init__()
        self.data = bytearray()
        self.closed = False
        self.aborted = False
        self.reading = True
        self.high_water = 0
        self.protocol: Any = None
        self._incoming: collections.deque[bytes] = collections.deque()
        self._delivering = False
        self._extra = {"peername": peer, "sockname": sock, "sslcontext": object() if tls else None}

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        self.data += data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            loop = asyncio.get_running_loop()
            loop.call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def feed(self, data: bytes) -> None:
        """Bytes from the client: delivered later, one ``data_received`` per chunk."""
        self._incoming.append(data)
        self._schedule()

    def pending(self) -> int:
        """Chunks received but not delivered yet (reading paused, or not yet run)."""
        return len(self._incoming)

    def _schedule(self) -> None:
        if self._incoming and self.reading and not self.closed and not self._delivering:
            self._delivering = True
            asyncio.get_running_loop().call_soon(self._deliver)

    def _deliver(self) -> None:
        self._delivering = False
        if self._incoming and self.reading and not self.closed:
            self.protocol.data_received(self._incoming.popleft())
        self._schedule()

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True
        self._schedule()

    def is_reading(self) -> bool:
        return self.reading

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.high_water = high or 0

    def get_write_buffer_size(self) -> int:
        return 0

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.protocol

    def take(self) -> bytes:
        out = bytes(self.data)
        self.data.clear()
        return out


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    complete: bool = False
    http_version: str = ""

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class _Reader:
    def __init__(self) -> None:
        self.responses: list[Response] = []
        self.current: Response | None = None

    def on_message_begin(self) -> None:
        self.current = Response(0)
        self.responses.append(self.current)

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.current.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        assert self.current is not None
        self.current.body += body

    def on_message_complete(self) -> None:
        assert self.current is not None
        self.current.complete = True


def parse_responses(data: bytes) -> list[Response]:
    """Parse the responses in ``data`` (the last one may be incomplete)."""
    statuses: list[int] = []

    class Tracking(_Reader):
        def on_headers_complete(self) -> None:
            statuses.append(parser.get_status_code())
            assert self.current is not None
            self.current.http_version = parser.get_http_version()

    reader = Tracking()
    parser = httptools.HttpResponseParser(reader)
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        pass
    for response, status in zip(reader.responses, statuses, strict=False):
        response.status = status
    return reader.responses


class Connection:
    """One HTTPProtocol over a FakeTransport, in the running loop."""

    def __init__(
        self,
        app: ASGIApp,
        config: Config | None = None,
        *,
        ctx: ProtocolContext | None = None,
        **transport: Any,
    ) -> None:
        if ctx is None:
            self.config = config or Config(lifespan="off")
            ctx = ProtocolContext(ServerState(config=self.config, app=app))
        self.config = ctx.config
        self.state = ctx.state
        self.ctx = ctx
        self.protocol = HTTPProtocol(self.ctx, asyncio.get_running_loop())
        self.transport = FakeTransport(**transport)
        self.transport.protocol = self.protocol
        self.protocol.connection_made(self.transport)

    def send(self, data: bytes, bytewise: bool = False) -> None:
        """The client sends ``data``: in one read, or one read per byte."""
        if bytewise:
            for i in range(len(data)):
                self.transport.feed(data[i : i + 1])
        else:
            self.transport.feed(data)

    async def settle(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def responses(self, count: int = 1, timeout: float = 5.0) -> list[Response]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            parsed = parse_responses(bytes(self.transport.data))
            done = [r for r in parsed if r.complete]
            if len(done) >= count or loop.time() > deadline:
                return parsed
            await asyncio.sleep(0.001)

    async def closed(self, timeout: float = 5.0) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.transport.closed and loop.time() < deadline:
            await asyncio.sleep(0.001)
        return self.transport.closed
