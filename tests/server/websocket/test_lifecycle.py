"""Keepalive, lifetime and connect timeouts, backpressure, shutdown, access log."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from narrows.types import Message, Receive, Send
from tests.server.websocket.harness import running, wait_for
from tests.server.websocket.rawclient import RawClient


class Holder:
    """Accepts, then records every message until disconnect."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            self.messages.append(message)
            if message["type"] == "websocket.disconnect":
                return


async def test_unanswered_ping_closes_1011() -> None:
    app = Holder()
    async with running(app, ping_interval=0.2, ping_timeout=0.4) as srv:
        client = await RawClient.open(srv.port)
        ping = await client.read_frame()
        assert ping.opcode == 0x9
        close = await client.read_until_close()
        assert close.close_code == 1011
        await client.expect_eof()
        await client.close()
        await wait_for(lambda: bool(app.messages))
    assert app.messages[-1]["code"] == 1011


async def test_answered_pings_keep_the_connection_open() -> None:
    async def echo(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message["text"]})

    async with (
        running(echo, ping_interval=0.1, ping_timeout=0.3) as srv,
        connect(srv.url, ping_interval=None) as ws,  # the client answers pings itself
    ):
        await asyncio.sleep(1.2)
        await ws.send("still here")
        assert await ws.recv() == "still here"


async def test_pong_resets_the_timeout_for_a_raw_client() -> None:
    app = Holder()
    async with running(app, ping_interval=0.1, ping_timeout=0.3) as srv:
        client = await RawClient.open(srv.port)
        for _ in range(5):
            ping = await client.read_frame()
            assert ping.opcode == 0x9
            client.send_frame(0xA, ping.payload)
        client.send_frame(0x1, b"alive")
        await wait_for(lambda: bool(app.messages))
        assert app.messages[0] == {"type": "websocket.receive", "text": "alive"}
        await client.close()


async def test_maximum_lifetime_closes_the_connection() -> None:
    async with running(Holder(), websocket_timeout=0.5, ping_interval=None) as srv:
        async with connect(srv.url) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1001


async def test_connect_timeout_rejects_a_slow_app() -> None:
    disconnects: list[Message] = []

    async def slow(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        disconnects.append(await receive())  # never accepts

    async with running(slow, websocket_connect_timeout=0.3) as srv:
        with pytest.raises(InvalidStatus) as info:
            async with connect(srv.url):
                pass
        assert info.value.response.status_code == 403
        await wait_for(lambda: bool(disconnects))
    assert disconnects[0]["type"] == "websocket.disconnect"


async def test_receive_queue_is_bounded_and_reading_pauses() -> None:
    release = asyncio.Event()
    received: list[str] = []

    async def slow_reader(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await release.wait()
        while (message := await receive())["type"] == "websocket.receive":
            received.append(message["text"])

    async with running(slow_reader, websocket_max_queue=4) as srv:
        client = await RawClient.open(srv.port)
        for i in range(50):
            client.send_frame(0x1, str(i).encode())
            if i % 5 == 4:  # separate reads on the server side
                await client.writer.drain()
                await asyncio.sleep(0.02)
        (proto,) = srv.connections()
        await wait_for(lambda: proto.reading_paused)
        queued = len(proto._queue)
        await asyncio.sleep(0.3)
        # Reading stopped: what the last read already held is kept, nothing more is read.
        assert 4 <= len(proto._queue) == queued < 50
        release.set()
        await wait_for(lambda: len(received) == 50)
        assert received == [str(i) for i in range(50)]
        assert not proto.reading_paused
        await client.close()


async def test_send_waits_while_the_client_does_not_read() -> None:
    sent = 0
    total = 120
    chunk = b"z" * 65536

    async def flooder(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        nonlocal sent
        await receive()
        await send({"type": "websocket.accept"})
        for _ in range(total):
            await send({"type": "websocket.send", "bytes": chunk})
            sent += 1
        await receive()

    options = {"flow_control_high_water": 16 * 1024, "websocket_compression": False}
    async with running(flooder, **options) as srv:
        client = await RawClient.open(srv.port)
        await asyncio.sleep(0.5)
        stalled_at = sent
        await asyncio.sleep(0.5)
        assert sent == stalled_at < total  # send() is suspended: the transport is full
        for _ in range(total):
            frame = await client.read_frame()
            assert len(frame.payload) == 65536
        assert sent == total
        await client.close()


async def test_graceful_shutdown_closes_with_1012() -> None:
    async with running(Holder(), graceful_timeout=5.0) as srv, connect(srv.url) as ws:
        stopping = asyncio.create_task(srv.stop())
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1012
        assert await stopping == 0


async def test_access_log_events(tmp_path: Path) -> None:
    log = tmp_path / "access.log"

    async def rejecting(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        if scope["path"] == "/no":
            await send({"type": "websocket.close"})
            return
        await send({"type": "websocket.accept"})
        await receive()

    async with running(rejecting, access_log=str(log)) as srv:
        async with connect(srv.url + "/yes"):
            pass
        with pytest.raises(InvalidStatus):
            async with connect(srv.url + "/no"):
                pass
        await asyncio.sleep(0.1)
    lines = log.read_text().splitlines()
    events = [line.split('"')[1] for line in lines]
    assert events == [
        "WSCONNECTING /yes",
        "WSCONNECT /yes",
        "WSDISCONNECT /yes",
        "WSCONNECTING /no",
        "WSREJECT /no",
    ]


async def test_keepalive_waits_while_reading_is_paused_for_a_slow_app() -> None:
    release = asyncio.Event()
    received: list[Message] = []

    async def slow(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await release.wait()
        while (message := await receive())["type"] == "websocket.receive":
            received.append(message)

    async with running(slow, websocket_max_queue=1, ping_interval=0.1, ping_timeout=0.2) as srv:
        client = await RawClient.open(srv.port)
        client.send_frame(0x1, b"fills the queue")
        (proto,) = srv.connections()
        await wait_for(lambda: proto.reading_paused)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while loop.time() < deadline:  # answer every ping; none can be read by the server
            try:
                frame = await asyncio.wait_for(client.read_frame(), deadline - loop.time())
            except TimeoutError:
                break
            assert frame.opcode == 0x9, f"expected only pings, got opcode {frame.opcode}"
            client.send_frame(0xA, frame.payload)
        release.set()
        client.send_frame(0x1, b"still open")
        await wait_for(lambda: len(received) == 2)
        assert received[1]["text"] == "still open"
        await client.close()
