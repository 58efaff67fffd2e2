"""The runserver development log lines (narrows.management.devlog), fed real ASGI apps."""

from __future__ import annotations

from typing import Any

import pytest

from narrows.management.devlog import DevLogMiddleware
from narrows.types import Message, Receive, Scope, Send


def http_scope(path: str = "/hello/", query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query,
        "client": ("127.0.0.1", 5000),
    }


def ws_scope(path: str = "/ws/chat/lobby/") -> dict[str, Any]:
    return {"type": "websocket", "path": path, "query_string": b"", "client": ("10.0.0.2", 41000)}


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, int]] = []
        self.sent: list[Message] = []

    def write(self, line: str, status: int) -> None:
        self.lines.append((line, status))

    async def send(self, message: Message) -> None:
        self.sent.append(message)


def receiver(*messages: Message) -> Receive:
    queue = list(messages)

    async def receive() -> Message:
        return queue.pop(0)

    return receive


async def hello_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hel", "more_body": True})
    await send({"type": "http.response.body", "body": b"lo"})


async def test_http_line_after_the_last_body_chunk() -> None:
    rec = Recorder()
    await DevLogMiddleware(hello_app, rec.write)(http_scope(query=b"a=1"), receiver(), rec.send)
    [(line, status)] = rec.lines
    assert status == 200
    assert line.startswith("HTTP GET /hello/?a=1 200 [0.")
    assert line.endswith(", 127.0.0.1:5000]")
    assert [m["type"] for m in rec.sent] == ["http.response.start", *["http.response.body"] * 2]


async def test_failing_http_app_is_logged_as_500_and_reraised() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    rec = Recorder()
    with pytest.raises(RuntimeError, match="boom"):
        await DevLogMiddleware(broken, rec.write)(http_scope(), receiver(), rec.send)
    [(line, status)] = rec.lines
    assert (line.split(" [")[0], status) == ("HTTP GET /hello/ 500", 500)


async def test_unix_socket_client_shows_dash() -> None:
    rec = Recorder()
    scope = {**http_scope(), "client": None}
    await DevLogMiddleware(hello_app, rec.write)(scope, receiver(), rec.send)
    assert rec.lines[0][0].endswith(", -]")


async def test_websocket_connect_then_client_disconnect() -> None:
    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message["text"]})

    rec = Recorder()
    await DevLogMiddleware(echo, rec.write)(
        ws_scope(),
        receiver(
            {"type": "websocket.connect"},
            {"type": "websocket.receive", "text": "hi"},
            {"type": "websocket.disconnect", "code": 1000},
        ),
        rec.send,
    )
    assert rec.lines == [
        ("WebSocket HANDSHAKING /ws/chat/lobby/ [10.0.0.2:41000]", 0),
        ("WebSocket CONNECT /ws/chat/lobby/ [10.0.0.2:41000]", 101),
        ("WebSocket DISCONNECT /ws/chat/lobby/ [10.0.0.2:41000]", 0),
    ]


async def test_websocket_closed_before_accept_is_a_reject() -> None:
    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1000})

    rec = Recorder()
    await DevLogMiddleware(refuse, rec.write)(
        ws_scope(), receiver({"type": "websocket.connect"}), rec.send
    )
    assert [line for line, _ in rec.lines] == [
        "WebSocket HANDSHAKING /ws/chat/lobby/ [10.0.0.2:41000]",
        "WebSocket REJECT /ws/chat/lobby/ [10.0.0.2:41000]",
    ]
    assert rec.lines[-1][1] == 403


async def test_server_side_close_after_accept_is_one_disconnect() -> None:
    async def accept_and_close(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4003})

    rec = Recorder()
    await DevLogMiddleware(accept_and_close, rec.write)(
        ws_scope(), receiver({"type": "websocket.connect"}), rec.send
    )
    words = [line.split()[1] for line, _ in rec.lines]
    assert words == ["HANDSHAKING", "CONNECT", "DISCONNECT"]


async def test_other_scopes_pass_through_untouched() -> None:
    seen: list[str] = []

    async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    rec = Recorder()
    await DevLogMiddleware(lifespan, rec.write)({"type": "lifespan"}, receiver(), rec.send)
    assert seen == ["lifespan"] and rec.lines == []
