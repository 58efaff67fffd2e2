"""Readable development log lines for ``manage.py runserver``, in Daphne's format.

``DevLogMiddleware`` wraps the ASGI application and writes one line per HTTP response and per
WebSocket event::

    HTTP GET /chat/lobby/ 200 [0.01, 127.0.0.1:51234]
    WebSocket HANDSHAKING /ws/chat/lobby/ [127.0.0.1:51236]
    WebSocket CONNECT /ws/chat/lobby/ [127.0.0.1:51236]
    WebSocket DISCONNECT /ws/chat/lobby/ [127.0.0.1:51236]

It watches only the ASGI messages, so it works with any server and costs nothing in
production (``runserver`` is the only user).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

from narrows.types import ASGIApp, Message, Receive, Scope, Send

#: ``write(line, status)``: status is the HTTP status for HTTP lines and the handshake
#: result for WebSocket lines (101 accepted, 403 rejected, 0 otherwise); it picks a colour.
Writer = Callable[[str, int], None]


class WebSocketPhase(enum.Enum):
    HANDSHAKING = "handshaking"
    CONNECTED = "connected"
    REJECTED = "rejected"
    DISCONNECTED = "disconnected"


_WEBSOCKET_LINES = {
    WebSocketPhase.HANDSHAKING: ("HANDSHAKING", 0),
    WebSocketPhase.CONNECTED: ("CONNECT", 101),
    WebSocketPhase.REJECTED: ("REJECT", 403),
    WebSocketPhase.DISCONNECTED: ("DISCONNECT", 0),
}


def client_label(scope: Scope) -> str:
    client = scope.get("client")
    if not client:
        return "-"
    host, port = client[0], client[1]
    return f"{host}:{port}" if port is not None else str(host)


def full_path(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


class DevLogMiddleware:
    """ASGI middleware writing one log line per HTTP response and WebSocket event."""

    def __init__(self, app: ASGIApp, write: Writer) -> None:
        self.app = app
        self.write = write

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        status: int | None = None
        logged = False

        def log(code: int) -> None:
            nonlocal logged
            logged = True
            taken = time.monotonic() - started
            line = (
                f"HTTP {scope.get('method', '-')} {full_path(scope)} {code} "
                f"[{taken:.2f}, {client_label(scope)}]"
            )
            self.write(line, code)

        async def logging_send(message: Message) -> None:
            nonlocal status
            await send(message)
            kind = message.get("type")
            if kind == "http.response.start":
                status = int(message["status"])
            elif (
                kind == "http.response.body"
                and not message.get("more_body", False)
                and status is not None
                and not logged
            ):
                log(status)

        try:
            await self.app(scope, receive, logging_send)
        except BaseException:
            if not logged:
                # The server answers 500 when the app fails before its response starts.
                log(status if status is not None else 500)
            raise
        if not logged and status is not None:
            log(status)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        phase = WebSocketPhase.HANDSHAKING
        path, client = full_path(scope), client_label(scope)

        def move(to: WebSocketPhase) -> None:
            nonlocal phase
            if phase is WebSocketPhase.HANDSHAKING and to is WebSocketPhase.DISCONNECTED:
                to = WebSocketPhase.REJECTED  # closed before it was ever accepted
            if phase in (WebSocketPhase.REJECTED, WebSocketPhase.DISCONNECTED) or to is phase:
                return
            phase = to
            word, status = _WEBSOCKET_LINES[to]
            self.write(f"WebSocket {word} {path} [{client}]", status)

        async def logging_receive() -> Message:
            message: Message = await receive()
            if message.get("type") == "websocket.disconnect":
                move(WebSocketPhase.DISCONNECTED)
            return message

        async def logging_send(message: Message) -> None:
            await send(message)
            kind = message.get("type")
            if kind == "websocket.accept":
                move(WebSocketPhase.CONNECTED)
            elif kind in ("websocket.close", "websocket.http.response.start"):
                move(WebSocketPhase.DISCONNECTED)

        word, status = _WEBSOCKET_LINES[phase]
        self.write(f"WebSocket {word} {path} [{client}]", status)
        try:
            await self.app(scope, logging_receive, logging_send)
        finally:
            move(WebSocketPhase.DISCONNECTED)
