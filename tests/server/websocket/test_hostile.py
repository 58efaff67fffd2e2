"""Hostile clients over real sockets: ping floods from a client that never reads, clients
that stop reading, slow consumers, fragment floods, and apps whose handshake answers would
split the response. Each test fails on a server that buffers without bound or holds on.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from typing import Any

import pytest

from narrows.server.websocket.frames import OP_BINARY, OP_CONTINUATION, OP_PING, OP_TEXT
from narrows.types import Message, Receive, Send
from tests.server.websocket.harness import running, wait_for
from tests.server.websocket.rawclient import RawClient, handshake_request

HIGH_WATER = 16 * 1024


async def stalled_client(port: int, path: str = "/") -> RawClient:
    """A client with a 4 KiB receive buffer that stops reading after the handshake."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    client = RawClient(reader, writer)
    client.send(handshake_request(path))
    await client.read_head()
    assert client.status == 101
    writer.transport.pause_reading()  # type: ignore[attr-defined]
    return client


async def send_for(client: RawClient, chunk: bytes, seconds: float, limit: int) -> int:
    """Write ``chunk`` repeatedly until ``limit`` bytes or ``seconds``; bytes handed over."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    written = 0
    try:
        while written < limit and loop.time() < deadline:
            client.writer.write(chunk)
            written += len(chunk)
            await asyncio.wait_for(client.writer.drain(), max(0.01, deadline - loop.time()))
    except TimeoutError:
        pass
    return written - client.writer.transport.get_write_buffer_size()


async def echo(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": message.get("text") or "?"})


# -- item: pings from a client that never reads ------------------------------------------------


async def test_ping_flood_from_a_client_that_never_reads_stays_bounded() -> None:
    ping = RawClient.masked(OP_PING, b"p" * 125)
    async with running(echo, flow_control_high_water=HIGH_WATER) as srv:
        client = await stalled_client(srv.port)
        (proto,) = srv.connections()
        sent = await send_for(client, ping * 500, 3.0, 32 * 1024 * 1024)
        assert sent > 4 * 1024 * 1024  # tens of thousands of pings the client never reads
        # One pong per read at most (they coalesce), none while over the high-water mark:
        # the pongs fit the kernel's buffers; one pong per ping would be megabytes here.
        unsent = proto.transport.get_write_buffer_size()
        assert unsent <= HIGH_WATER + len(ping), f"{unsent} bytes of pongs buffered"
        await client.close()


async def test_reading_pauses_while_the_client_does_not_read_and_pongs_follow() -> None:
    flood = b"z" * 65536
    count = 200  # 12.5 MiB: more than the kernel's buffers hold

    async def pusher(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for _ in range(count):
            await send({"type": "websocket.send", "bytes": flood})
        await receive()

    options = {"flow_control_high_water": HIGH_WATER, "websocket_compression": False}
    async with running(pusher, **options) as srv:
        client = await stalled_client(srv.port)
        (proto,) = srv.connections()
        await wait_for(lambda: proto.reading_paused)
        for i in range(20):  # pings the server must not answer while it cannot write
            client.send_frame(OP_PING, b"%d" % i)
        await client.writer.drain()
        await asyncio.sleep(0.2)
        assert proto.reading_paused
        assert proto.transport.get_write_buffer_size() <= HIGH_WATER + len(flood) + 14
        client.writer.transport.resume_reading()  # type: ignore[attr-defined]
        data_frames, pongs = 0, []
        while data_frames < count or not pongs or pongs[-1] != b"19":
            frame = await client.read_frame()
            if frame.opcode == 0xA:
                pongs.append(frame.payload)
            else:
                assert frame.opcode == OP_BINARY and frame.payload == flood
                data_frames += 1
        # Answered once the client read again: the latest ping always, earlier ones
        # coalesced (an ordered selection).
        assert pongs == [p for p in (b"%d" % i for i in range(20)) if p in pongs]
        await client.close()


# -- item: a client that stops reading is released ---------------------------------------------


def flooding_app(ended: list[str]) -> Any:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            if scope["path"] == "/close":  # the app gives up on sending, then closes
                try:
                    await asyncio.wait_for(
                        send({"type": "websocket.send", "bytes": b"z" * (4 << 20)}), 0.3
                    )
                except TimeoutError:
                    pass
                await send({"type": "websocket.close", "code": 1000})
                await receive()
            else:  # blocked in send() when the keepalive gives up
                for _ in range(1000):
                    await send({"type": "websocket.send", "bytes": b"z" * 65536})
        except OSError as exc:
            ended.append(type(exc).__name__)
            raise
        ended.append("returned")

    return app


@pytest.mark.parametrize(
    "path", [pytest.param("/", id="keepalive-timeout"), pytest.param("/close", id="app-close")]
)
async def test_a_client_that_stops_reading_is_aborted_and_the_app_ends(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    ended: list[str] = []
    options = {
        "flow_control_high_water": HIGH_WATER,
        "websocket_compression": False,
        "ping_interval": 0.2,
        "ping_timeout": 0.3,
        "websocket_close_timeout": 0.5,
    }
    caplog.set_level(logging.INFO, logger="narrows.server")
    async with running(flooding_app(ended), **options) as srv:
        client = await stalled_client(srv.port, path)
        await wait_for(lambda: bool(srv.connections()))
        await wait_for(lambda: not srv.connections(), timeout=5.0)  # released
        await wait_for(lambda: bool(ended), timeout=5.0)
        assert srv.server.state is not None
        await wait_for(lambda: not srv.server.state.tasks, timeout=5.0)  # the app task ended
        await client.close()
    assert ended == (["returned"] if path == "/close" else ["ClientDisconnected"])
    aborted = [r for r in caplog.records if "aborting the connection" in r.getMessage()]
    assert len(aborted) == 1 and aborted[0].levelno == logging.INFO


# -- item: the receive queue is bounded in bytes -----------------------------------------------


EMOJI_TEXT = "\U0001f600" * 250_000


@pytest.mark.parametrize(
    ("opcode", "payload", "message"),
    [
        pytest.param(OP_BINARY, b"m" * 1_000_000, b"m" * 1_000_000, id="binary"),
        # 250,000 characters of 4 bytes each: counted by len() they would be a quarter of
        # the memory they hold, and four times the bound would queue up.
        pytest.param(OP_TEXT, EMOJI_TEXT.encode(), EMOJI_TEXT, id="emoji-text"),
    ],
)
async def test_receive_queue_is_bounded_in_memory_and_reading_pauses(
    opcode: int, payload: bytes, message: str | bytes
) -> None:
    release = asyncio.Event()
    received: list[str | bytes] = []

    async def slow(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await release.wait()
        while (event := await receive())["type"] == "websocket.receive":
            received.append(event["bytes"] if event.get("bytes") is not None else event["text"])

    async with running(slow) as srv:  # websocket_max_queue_bytes: 1 MiB by default
        client = await RawClient.open(srv.port)
        (proto,) = srv.connections()
        for _ in range(10):
            client.send_frame(opcode, payload)
        await wait_for(lambda: proto.reading_paused and proto._queue is not None)
        await asyncio.sleep(0.3)
        held = sum(sys.getsizeof(m) for m in proto._queue)
        # 1 MiB of memory reached: reading paused (at most the read that crossed it came along).
        assert 1024 * 1024 <= held <= 2_100_000 and len(proto._queue) <= 2
        release.set()
        await wait_for(lambda: len(received) == 10)
        assert received == [message] * 10
        await client.close()


# -- item: fragment floods ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "count"),
    [pytest.param(b"", 20_000, id="empty-continuations"), pytest.param(b"a", 20_000, id="1-byte")],
)
async def test_fragment_floods_close_1009(payload: bytes, count: int) -> None:
    async with running(echo) as srv:
        client = await RawClient.open(srv.port)
        data = RawClient.masked(OP_TEXT, payload, fin=False)
        data += RawClient.masked(OP_CONTINUATION, payload, fin=False) * count
        client.send(data)
        close = await client.read_until_close()
        assert close.close_code == 1009
        assert close.close_reason == "message in more than 16384 fragments exceeds the limit"
        await client.close()


async def test_many_fragments_under_the_cap_make_one_message() -> None:
    async with running(echo) as srv:
        client = await RawClient.open(srv.port)
        data = RawClient.masked(OP_TEXT, b"a", fin=False)
        data += RawClient.masked(OP_CONTINUATION, b"b", fin=False) * 16382
        data += RawClient.masked(OP_CONTINUATION, b"c")
        client.send(data)
        reply = await client.read_frame()
        assert reply.payload == b"a" + b"b" * 16382 + b"c"
        await client.close()


# -- item: nothing the app passes can split the handshake response -------------------------------


def answering(message: Message) -> Any:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send(message)
        if message["type"] == "websocket.http.response.start":
            await send({"type": "websocket.http.response.body", "body": b"no"})

    return app


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(
            {"type": "websocket.accept", "subprotocol": "x\r\nSet-Cookie: evil=1"},
            id="subprotocol",
        ),
        pytest.param(
            {"type": "websocket.accept", "headers": [(b"x-a", b"1\r\nSet-Cookie: evil=1")]},
            id="accept-header-value",
        ),
        pytest.param({"type": "websocket.accept", "headers": [(b"x bad:", b"1")]}, id="name"),
        pytest.param(
            {
                "type": "websocket.http.response.start",
                "status": 403,
                "headers": [(b"x-a", b"1\r\nSet-Cookie: evil=1")],
            },
            id="denial-header-value",
        ),
        pytest.param(
            {"type": "websocket.http.response.start", "status": 403, "headers": [(b"x a", b"1")]},
            id="denial-header-name",
        ),
    ],
)
async def test_a_handshake_answer_that_would_split_the_head_is_a_500(
    message: Message, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(answering(message)) as srv:
        client = await RawClient.connect(srv.port)
        client.send(handshake_request("/", [("Sec-WebSocket-Protocol", "x")]))
        head = await client.read_head()
        assert client.status == 500
        assert b"evil" not in head.lower() and b"x bad" not in head.lower()
        assert await client.read_body() == b"Internal Server Error"
        await client.expect_eof()
        await client.close()
    errors = [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]
    assert len(errors) == 1
    assert "InvalidResponse" in repr(errors[0].exc_info)


# -- every connection's app in a Task of its own --------------------------------------------------


async def test_a_pipelined_http_request_does_not_leak_its_contextvars_into_the_websocket() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")
    seen: list[str | None] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            var.set("set by the HTTP request")
            start = {"type": "http.response.start", "status": 200, "headers": []}
            await send({**start, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        seen.append(var.get(None))
        await receive()
        await send({"type": "websocket.accept"})
        await receive()

    async with running(app) as srv:
        client = await RawClient.connect(srv.port)
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + handshake_request("/"))
        await wait_for(lambda: bool(seen))
        await client.close()
    assert seen == [None]
