"""permessage-deflate (RFC 7692) over real sockets, with websockets' compressing client."""

from __future__ import annotations

import zlib
from typing import Any

from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)

from narrows.types import Receive, Send
from tests.server.websocket.harness import running
from tests.server.websocket.rawclient import RawClient

OFFER = [("Sec-WebSocket-Extensions", "permessage-deflate")]


async def echo(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


def deflate_of(ws: Any) -> PerMessageDeflate | None:
    for ext in ws.protocol.extensions:
        if isinstance(ext, PerMessageDeflate):
            return ext
    return None


async def test_negotiated_by_default_and_messages_round_trip() -> None:
    async with running(echo) as srv, connect(srv.url) as ws:
        ext = deflate_of(ws)
        assert ext is not None
        assert ws.response is not None
        assert ws.response.headers["sec-websocket-extensions"] == (
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
        )
        for payload in ["short", "compressible " * 5000, "ünïcode ✓ " * 300]:
            await ws.send(payload)
            assert await ws.recv() == payload
        data = bytes(range(256)) * 100
        await ws.send(data)
        assert await ws.recv() == data


async def test_no_context_takeover_and_window_bits_from_the_client() -> None:
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=10,
        client_max_window_bits=9,
    )
    async with running(echo) as srv, connect(srv.url, extensions=[factory], compression=None) as ws:
        ext = deflate_of(ws)
        assert ext is not None
        assert ext.local_no_context_takeover and ext.remote_no_context_takeover
        assert ext.remote_max_window_bits == 10  # the server's window, seen by the client
        assert ext.local_max_window_bits == 9
        for _ in range(5):
            await ws.send("again and again " * 100)
            assert await ws.recv() == "again and again " * 100


async def test_turned_off_with_no_websocket_compression() -> None:
    async with running(echo, websocket_compression=False) as srv, connect(srv.url) as ws:
        assert deflate_of(ws) is None
        assert ws.response is not None
        assert "sec-websocket-extensions" not in ws.response.headers
        await ws.send("x" * 1000)
        assert await ws.recv() == "x" * 1000


async def test_server_sends_compressed_frames() -> None:
    async with running(echo) as srv:
        client = await RawClient.open(srv.port, extra=OFFER)
        assert client.header("sec-websocket-extensions") == (
            "permessage-deflate; server_max_window_bits=12"
        )
        c = zlib.compressobj(wbits=-15)
        text = ("hello deflate " * 200).encode()
        compressed = (c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        client.send_frame(0x1, compressed, rsv1=True)
        frame = await client.read_frame()
        assert frame.rsv1 and frame.opcode == 0x1
        assert len(frame.payload) < len(text) // 10
        d = zlib.decompressobj(wbits=-12)
        assert d.decompress(frame.payload + b"\x00\x00\xff\xff") == text
        await client.close()


async def test_zip_bomb_is_closed_with_1009() -> None:
    async with running(echo) as srv:
        client = await RawClient.open(srv.port, extra=OFFER)
        c = zlib.compressobj(wbits=-15)
        bomb = (c.compress(b"\x00" * 100_000_000) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        assert len(bomb) < 200_000  # well under the 1 MiB frame limit
        client.send_frame(0x2, bomb, rsv1=True)
        frame = await client.read_until_close()
        assert frame.close_code == 1009
        await client.expect_eof()
        await client.close()


async def test_corrupt_compressed_data_is_1007() -> None:
    async with running(echo) as srv:
        client = await RawClient.open(srv.port, extra=OFFER)
        client.send_frame(0x2, b"\xff\xff\xff\xff\xff", rsv1=True)
        frame = await client.read_until_close()
        assert frame.close_code == 1007
        await client.close()
