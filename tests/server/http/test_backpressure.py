"""Clients that do not read, trickle their bodies or ask for an Upgrade narrows ignores.

Over real sockets: the server must stay bounded in memory and release what such clients
hold, whatever they send.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import pytest

from tests.server.http.fakes import Connection, parse_responses
from tests.server.http.serving import port_of, request, serving

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
KIB = b"x" * 1024


def counting_app(body: bytes) -> tuple[list[int], Any]:
    served = [0]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        served[0] += 1
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": body})

    return served, app


def stalled_client(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.setblocking(False)
    return sock


def send_some(sock: socket.socket, data: bytes) -> int:
    """Send what the kernel takes without blocking; how many bytes went."""
    try:
        return sock.send(data)
    except BlockingIOError:
        return 0


async def test_pipelined_gets_from_a_client_that_never_reads_stay_bounded() -> None:
    served, app = counting_app(KIB * 4)
    requests = 20_000  # 80 MiB of responses if the server answered them all
    async with serving(app) as server:
        sock = stalled_client(port_of(server))
        data = GET * requests
        sent = 0
        deadline = time.monotonic() + 3
        while sent < len(data) and time.monotonic() < deadline:
            sent += send_some(sock, data[sent : sent + 65536])
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        assert server.state is not None
        [conn] = list(server.state.connections)
        buffered = conn.transport.get_write_buffer_size()  # type: ignore[attr-defined]
        stalled_at = served[0]
        await asyncio.sleep(0.5)
        assert served[0] == stalled_at  # nothing more is served while nobody reads
        sock.close()
    # Kernel socket buffers hold a few MiB of responses; narrows itself at most about one
    # high-water mark (64 KiB) plus the response that crossed it.
    assert stalled_at < 2000, stalled_at
    assert buffered <= 64 * 1024 + 8 * 1024, buffered


async def test_pipelined_requests_resume_when_the_client_reads_again() -> None:
    served, app = counting_app(KIB * 4)
    async with serving(app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(GET * 3000 + b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        await asyncio.sleep(0.5)
        data = await asyncio.wait_for(reader.read(), 30)
        writer.close()
    assert served[0] == 3001
    assert data.count(b"HTTP/1.1 200 OK") == 3001


async def test_a_response_left_unread_is_dropped_after_the_write_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.start", "status": 200})
            for _ in range(4096):  # 64 MiB
                await send({"type": "http.response.body", "body": KIB * 16, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            finished.set()

    with caplog.at_level(logging.INFO, logger="narrows"):
        async with serving(app, write_timeout=0.5) as server:
            sock = stalled_client(port_of(server))
            sock.send(GET)
            await asyncio.wait_for(finished.wait(), 10)
            assert server.state is not None
            for _ in range(100):
                if not server.state.connections:
                    break
                await asyncio.sleep(0.05)
            assert not server.state.connections
            sock.close()
    lines = [r for r in caplog.records if "left the response unread" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO


async def test_a_trickled_request_body_gets_408_after_the_body_timeout() -> None:
    got: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            got.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break

    async with serving(app, body_timeout=0.5) as server:
        # A raw socket: once the server has answered and closed, a write may fail (EPIPE,
        # or a reset), which a stream reader would report instead of the bytes already
        # received; the kernel still hands those over to recv().
        sock = socket.create_connection(("127.0.0.1", port_of(server)))
        sock.setblocking(False)
        sock.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
        started = time.monotonic()
        data = b""
        while time.monotonic() - started < 5:
            try:
                sock.send(b"x")  # one byte every 0.1 s: never idle, never done
            except OSError:
                pass  # the server closed: the answer is read below
            await asyncio.sleep(0.1)
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionError:
                break
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - started
        sock.close()
    [response] = parse_responses(data)
    assert response.status == 408
    assert response.header(b"connection") == b"close"
    assert elapsed < 3
    assert got[-1] == {"type": "http.disconnect"}


async def test_a_fast_body_is_not_cut_by_the_body_timeout() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        size = 0
        while True:
            message = await receive()
            size += len(message["body"])
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"%d" % size})

    async with serving(app, body_timeout=0.3) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        size = 2 * 1024 * 1024
        writer.write(b"PUT / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n")
        writer.write(b"Content-Length: %d\r\n\r\n" % size)
        for _ in range(size // 65536):  # each 64 KiB well within 0.3 s, the whole over it
            writer.write(KIB * 64)
            await writer.drain()
            await asyncio.sleep(0.02)
        data = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    assert parse_responses(data)[0].body == b"%d" % size


async def test_the_body_timeout_waits_for_100_continue() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.6)  # longer than the body timeout, before asking for the body
        message = await receive()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": message["body"]})

    async with serving(app, body_timeout=0.3) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(
            b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n"
            b"Connection: close\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.write(b"data")
        rest = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert rest.startswith(b"HTTP/1.1 200 OK") and rest.endswith(b"data")


@pytest.mark.parametrize(
    ("framing", "body"),
    [
        (b"Content-Length: 5\r\n", b"hello"),
        (b"Transfer-Encoding: chunked\r\n", b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"),
    ],
)
async def test_a_body_with_an_upgrade_narrows_ignores_reaches_the_app(
    framing: bytes, body: bytes
) -> None:
    bodies: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        data = b""
        while True:
            message = await receive()
            data += message["body"]
            if not message["more_body"]:
                break
        bodies.append(data)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": data})

    async with serving(app) as server:
        for upgrade in (b"h2c", b"websocket"):  # a POST can never be a WebSocket handshake
            data = await request(
                port_of(server),
                b"POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: " + upgrade
                + b"\r\n" + framing + b"\r\n" + body,
            )  # fmt: skip
            [response] = parse_responses(data)
            assert (response.status, response.body) == (200, b"hello")
    assert bodies == [b"hello", b"hello"]


async def test_no_pipelined_request_starts_while_the_transport_is_paused() -> None:
    gate = asyncio.Event()
    served = [0]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        served[0] += 1
        await gate.wait()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"ok"})

    conn = Connection(app)
    conn.send(GET * 50)
    await conn.settle()
    assert served[0] == 1 and conn.transport.reading is False  # the others wait their turn
    conn.protocol.pause_writing()  # the client stopped reading
    gate.set()
    await conn.settle()
    assert served[0] == 1  # the request in flight is answered; no other starts
    conn.protocol.resume_writing()
    responses = await conn.responses(50)
    assert len(responses) == 50 and served[0] == 50
    await conn.settle()
    assert conn.transport.reading is True
