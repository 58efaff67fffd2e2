"""The ASGI websocket cycle over real sockets, with the websockets client library."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from narrows.types import Message, Receive, Send
from tests.server.websocket.harness import running, wait_for
from tests.server.websocket.rawclient import RawClient, handshake_request


async def echo_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    assert scope["type"] == "websocket"
    message = await receive()
    assert message == {"type": "websocket.connect"}
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def test_echo_text_and_binary() -> None:
    async with running(echo_app) as srv, connect(srv.url + "/echo") as ws:
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\xff")
        assert await ws.recv() == b"\x00\xff"
        big = "x" * 300_000
        await ws.send(big)
        assert await ws.recv() == big


async def test_scope_fields() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        seen.update(scope)
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "chat.v2"})
        await receive()

    async with (
        running(app, root_path="/mount") as srv,
        connect(
            srv.url + "/caf%C3%A9/room?x=1&y=%20",
            subprotocols=["chat.v1", "chat.v2"],  # type: ignore[list-item]
            additional_headers={"X-Custom": "yes"},
        ) as ws,
    ):
        assert ws.subprotocol == "chat.v2"
    assert seen["type"] == "websocket"
    assert seen["asgi"]["version"] == "3.0"
    assert seen["scheme"] == "ws"
    assert seen["http_version"] == "1.1"
    assert seen["path"] == "/café/room"
    assert seen["raw_path"] == b"/caf%C3%A9/room"
    assert seen["query_string"] == b"x=1&y=%20"
    assert seen["root_path"] == "/mount"
    assert seen["subprotocols"] == ["chat.v1", "chat.v2"]
    assert seen["client"][0] == "127.0.0.1"
    assert seen["server"] == ("127.0.0.1", srv.port)
    assert (b"x-custom", b"yes") in seen["headers"]
    assert seen["state"] == {}
    assert "websocket.http.response" in seen["extensions"]


async def test_accept_headers_reach_the_client() -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept", "headers": [(b"set-cookie", b"sid=1")]})
        await receive()

    async with running(app) as srv, connect(srv.url) as ws:
        assert ws.response is not None
        assert ws.response.headers["set-cookie"] == "sid=1"
        assert ws.response.headers["server"] == "narrows"


async def test_close_with_code_and_reason() -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4001, "reason": "go away ✓"})

    async with running(app) as srv, connect(srv.url) as ws:
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 4001
    assert info.value.rcvd.reason == "go away ✓"


async def test_close_before_accept_is_http_403() -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close"})

    async with running(app) as srv:
        with pytest.raises(InvalidStatus) as info:
            async with connect(srv.url):
                pass
    assert info.value.response.status_code == 403


async def test_denial_response_extension() -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"log ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"in first"})

    async with running(app) as srv:
        client = await RawClient.connect(srv.port)
        client.send(handshake_request())
        await client.read_head()
        assert client.status == 401
        assert client.header("www-authenticate") == "Bearer"
        assert await client.read_body() == b"log in first"
        await client.expect_eof()
        await client.close()


async def test_send_after_close_raises_a_clear_error() -> None:
    errors: list[BaseException] = []
    done = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        assert message["type"] == "websocket.disconnect"
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:
            errors.append(exc)
        done.set()

    async with running(app) as srv:
        async with connect(srv.url):
            pass
        await asyncio.wait_for(done.wait(), 10)
    assert len(errors) == 1
    assert "closed" in str(errors[0])
    assert "close code 1000" in str(errors[0])


async def test_send_after_app_close_raises() -> None:
    errors: list[BaseException] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})
        try:
            await send({"type": "websocket.send", "text": "x"})
        except OSError as exc:
            errors.append(exc)

    async with running(app) as srv, connect(srv.url) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert errors and "is closed" in str(errors[0])


async def test_disconnect_reports_the_client_code_and_reason() -> None:
    got: list[Message] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        got.append(await receive())

    async with running(app) as srv:
        async with connect(srv.url) as ws:
            await ws.close(4321, "bye")
        await wait_for(lambda: bool(got))
    assert got[0] == {"type": "websocket.disconnect", "code": 4321, "reason": "bye"}


async def test_wrong_message_types_raise_precise_errors() -> None:
    errors: list[str] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        try:
            await send({"type": "http.response.start", "status": 200})
        except RuntimeError as exc:
            errors.append(str(exc))
        await send({"type": "websocket.accept"})
        try:
            await send({"type": "websocket.accept"})
        except RuntimeError as exc:
            errors.append(str(exc))
        try:
            await send({"type": "websocket.send"})
        except TypeError as exc:
            errors.append(str(exc))
        await send({"type": "websocket.close"})

    async with running(app) as srv, connect(srv.url) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert errors[0].startswith('Expected ASGI message "websocket.accept"')
    assert "got 'http.response.start'" in errors[0]
    assert 'Expected ASGI message "websocket.send" or "websocket.close"' in errors[1]
    assert "got 'websocket.accept'" in errors[1]
    assert "got neither" in errors[2]


async def test_app_error_before_accept_is_500_and_after_accept_is_1011() -> None:
    async def fails_early(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        raise ValueError("boom")

    async def fails_late(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise ValueError("boom")

    async with running(fails_early) as srv:
        with pytest.raises(InvalidStatus) as info:
            async with connect(srv.url):
                pass
        assert info.value.response.status_code == 500
    async with running(fails_late) as srv, connect(srv.url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011


async def test_app_returning_after_accept_closes_1000() -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})

    async with running(app) as srv, connect(srv.url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


async def test_lifespan_state_is_a_shallow_copy() -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["pool"] = "shared"
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        scopes.append(scope)
        scope["state"]["mine"] = True
        await receive()
        await send({"type": "websocket.accept"})
        await receive()

    async with running(app, lifespan="on") as srv:
        for _ in range(2):
            async with connect(srv.url):
                pass
    assert [s["state"] for s in scopes] == [{"pool": "shared", "mine": True}] * 2
    assert scopes[0]["state"] is not scopes[1]["state"]


async def test_messages_sent_with_the_handshake_are_not_lost() -> None:
    from narrows.server.websocket.frames import serialize_masked

    async with running(echo_app) as srv:
        client = await RawClient.connect(srv.port)
        client.send(handshake_request() + serialize_masked(0x1, b"early", b"abcd"))
        await client.read_head()
        assert client.status == 101
        frame = await client.read_frame()
        assert (frame.opcode, frame.payload) == (0x1, b"early")
        await client.close()


async def test_close_after_the_client_closed_is_not_an_error() -> None:
    outcome: list[str] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()  # the client's close
        await send({"type": "websocket.close"})  # a consumer's habitual close: a no-op
        outcome.append("closed quietly")

    async with running(app) as srv:
        async with connect(srv.url):
            pass
        await wait_for(lambda: bool(outcome))


async def test_subprotocol_must_be_a_string() -> None:
    errors: list[str] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        try:
            await send({"type": "websocket.accept", "subprotocol": b"chat"})
        except TypeError as exc:
            errors.append(str(exc))
        await send({"type": "websocket.close"})

    async with running(app) as srv:
        with pytest.raises(InvalidStatus):
            async with connect(srv.url):
                pass
    assert errors == ["expected 'subprotocol' to be str or None, got bytes"]


async def test_each_websocket_counts_as_one_request() -> None:
    async with running(echo_app) as srv:
        assert srv.server.state is not None
        before = srv.server.state.total_requests
        for _ in range(3):
            async with connect(srv.url) as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
        assert srv.server.state.total_requests == before + 3
