"""RFC 6455 strictness over real sockets: every rule answered with a close frame, then EOF."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from narrows.server.websocket.frames import OP_CLOSE, serialize
from narrows.types import Message, Receive, Send
from tests.server.websocket.harness import running, wait_for
from tests.server.websocket.rawclient import RawClient, handshake_request

MASK = b"\x01\x02\x03\x04"


def masked(first: int, payload: bytes = b"") -> bytes:
    from narrows.server.websocket.frames import apply_mask

    assert len(payload) < 126
    return bytes((first, 0x80 | len(payload))) + MASK + apply_mask(payload, MASK)


class Recorder:
    """An echo app that records what it received."""

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
            await send({"type": "websocket.send", "text": message.get("text") or "bin"})


CASES = [
    pytest.param(serialize(0x1, b"hi"), 1002, id="unmasked-frame"),
    pytest.param(masked(0x80 | 0x40 | 0x1, b"x"), 1002, id="rsv1-without-extension"),
    pytest.param(masked(0x80 | 0x20 | 0x1, b"x"), 1002, id="rsv2"),
    pytest.param(masked(0x80 | 0x10 | 0x1, b"x"), 1002, id="rsv3"),
    pytest.param(masked(0x80 | 0x3), 1002, id="reserved-opcode-3"),
    pytest.param(masked(0x80 | 0xF), 1002, id="reserved-opcode-15"),
    pytest.param(masked(0x09, b"p"), 1002, id="fragmented-ping"),
    pytest.param(
        bytes((0x89, 0x80 | 126)) + (126).to_bytes(2, "big") + MASK + b"\x00" * 126,
        1002,
        id="ping-over-125",
    ),
    pytest.param(masked(0x80 | 0x0, b"x"), 1002, id="continuation-without-start"),
    pytest.param(masked(0x01, b"a") + masked(0x81, b"b"), 1002, id="text-inside-fragmented"),
    pytest.param(masked(0x81, b"\xc3\x28"), 1007, id="invalid-utf8"),
    pytest.param(masked(0x01, b"\xe2\x82") + masked(0x80, b"\x28"), 1007, id="utf8-split-bad"),
    pytest.param(masked(0x88, b"\x03"), 1002, id="close-1-byte"),
    pytest.param(masked(0x88, (1004).to_bytes(2, "big")), 1002, id="close-code-1004"),
    pytest.param(masked(0x88, (1015).to_bytes(2, "big")), 1002, id="close-code-1015"),
    pytest.param(masked(0x88, (2999).to_bytes(2, "big")), 1002, id="close-code-2999"),
    pytest.param(masked(0x88, b"\x03\xe8\xc3\x28"), 1007, id="close-reason-bad-utf8"),
]


@pytest.mark.parametrize(("data", "code"), CASES)
async def test_protocol_error_gets_close_frame_then_eof(data: bytes, code: int) -> None:
    app = Recorder()
    async with running(app) as srv:
        client = await RawClient.open(srv.port)
        client.send(data)
        frame = await client.read_until_close()
        assert frame.close_code == code
        await client.expect_eof()
        await client.close()
        await wait_for(lambda: bool(app.messages))
    assert app.messages[-1]["type"] == "websocket.disconnect"
    assert app.messages[-1]["code"] == code


async def test_message_over_max_message_size_is_1009() -> None:
    async with running(Recorder(), websocket_max_message_size=1000) as srv:
        client = await RawClient.open(srv.port)
        client.send_frame(0x2, b"a" * 600, fin=False)
        client.send_frame(0x0, b"a" * 401)
        frame = await client.read_until_close()
        assert frame.close_code == 1009
        await client.expect_eof()
        await client.close()


async def test_frame_over_max_frame_size_is_1009_without_sending_the_payload() -> None:
    async with running(Recorder(), websocket_max_frame_size=1000) as srv:
        client = await RawClient.open(srv.port)
        # Only the header announcing 1 MB: the server must refuse before the payload.
        client.send(bytes((0x82, 0xFF)) + (1_000_000).to_bytes(8, "big") + MASK)
        frame = await client.read_until_close()
        assert frame.close_code == 1009
        await client.expect_eof()
        await client.close()


async def test_default_limit_is_one_mebibyte() -> None:
    async with running(Recorder()) as srv:
        ok = await RawClient.open(srv.port)
        ok.send_frame(0x2, b"a" * (1024 * 1024))
        reply = await ok.read_frame()
        assert reply.payload == b"bin"
        too_big = await RawClient.open(srv.port)
        too_big.send_frame(0x2, b"a" * (1024 * 1024 + 1))
        assert (await too_big.read_until_close()).close_code == 1009
        await ok.close()
        await too_big.close()


async def test_fragments_with_interleaved_ping_are_reassembled_and_pong_sent() -> None:
    app = Recorder()
    async with running(app) as srv:
        client = await RawClient.open(srv.port)
        client.send(masked(0x01, "€".encode()[:1]))
        client.send(masked(0x89, b"ping!"))
        client.send(masked(0x00, "€".encode()[1:]))
        client.send(masked(0x80, b" ok"))
        pong = await client.read_frame()
        assert (pong.opcode, pong.payload) == (0xA, b"ping!")
        echo = await client.read_frame()
        assert echo.payload.decode() == "€ ok"
        await client.close()


async def test_client_initiated_close_handshake() -> None:
    app = Recorder()
    async with running(app) as srv:
        client = await RawClient.open(srv.port)
        client.send(masked(0x88, (1000).to_bytes(2, "big") + b"done"))
        frame = await client.read_frame()
        assert frame.opcode == OP_CLOSE and frame.close_code == 1000
        await client.expect_eof()  # the server closes TCP first (RFC 6455 7.1.1)
        await client.close()
        await wait_for(lambda: bool(app.messages))
    assert app.messages[-1] == {"type": "websocket.disconnect", "code": 1000, "reason": "done"}


async def test_server_initiated_close_waits_for_the_client_close() -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000, "reason": "bye"})

    async with running(app) as srv:
        client = await RawClient.open(srv.port)
        frame = await client.read_frame()
        assert frame.opcode == OP_CLOSE and frame.close_code == 1000
        assert frame.close_reason == "bye"
        # TCP stays open until we answer the close.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.reader.read(1), 0.3)
        client.send(masked(0x88, (1000).to_bytes(2, "big")))
        await client.expect_eof()
        await client.close()


async def test_tcp_drop_reports_1006() -> None:
    app = Recorder()
    async with running(app) as srv:
        client = await RawClient.open(srv.port)
        await client.close()
        await wait_for(lambda: bool(app.messages))
    assert app.messages[-1]["code"] == 1006


@pytest.mark.parametrize(
    ("extra", "status", "version_header"),
    [
        pytest.param([("Sec-WebSocket-Version", "8")], 426, "13", id="version-8"),
        pytest.param([], 400, None, id="missing-key"),
    ],
)
async def test_bad_handshakes(
    extra: list[tuple[str, str]], status: int, version_header: str | None
) -> None:
    async with running(Recorder()) as srv:
        client = await RawClient.connect(srv.port)
        request = handshake_request(extra=extra)
        if status == 426:
            request = request.replace(b"Sec-WebSocket-Version: 13\r\n", b"")
        else:
            request = b"\r\n".join(
                line for line in request.split(b"\r\n") if not line.startswith(b"Sec-WebSocket-Key")
            )
        client.send(request)
        await client.read_head()
        assert client.status == status
        assert client.header("sec-websocket-version") == version_header
        await client.read_body()
        await client.expect_eof()
        await client.close()
