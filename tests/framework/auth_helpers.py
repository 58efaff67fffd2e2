"""Shared helpers for the auth/session/security tests: drive raw ASGI apps in-process.

The apps under test are plain ASGI callables wrapped in the real middleware; they are run
with asgiref's ``ApplicationCommunicator`` (the same driver Channels' communicators use).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any

from asgiref.testing import ApplicationCommunicator

from narrows.db import database_sync_to_async

Scope = dict[str, Any]
Headers = list[tuple[bytes, bytes]]


def http_scope(path: str = "/", headers: Iterable[tuple[bytes, bytes]] = ()) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def ws_scope(path: str = "/ws/", headers: Iterable[tuple[bytes, bytes]] = ()) -> Scope:
    scope = http_scope(path, headers)
    del scope["method"]
    scope.update(type="websocket", scheme="ws", subprotocols=[])
    return scope


def cookie_header(**cookies: str) -> tuple[bytes, bytes]:
    return (b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode())


def set_cookies(message: dict[str, Any]) -> dict[str, Any]:
    """The morsels of every Set-Cookie header in an ASGI message, by cookie name."""
    jar: SimpleCookie = SimpleCookie()
    for name, value in message.get("headers") or ():
        if name.lower() == b"set-cookie":
            jar.load(value.decode("latin-1"))
    return dict(jar)


def header_values(message: dict[str, Any], wanted: bytes) -> list[bytes]:
    return [value for name, value in message.get("headers") or () if name.lower() == wanted]


async def http_get(app: Any, scope: Scope) -> tuple[dict[str, Any], bytes]:
    """Run one HTTP request through ``app``; return the response start and the body."""
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(10)
    body = b""
    while True:
        chunk = await communicator.receive_output(10)
        body += chunk.get("body", b"")
        if not chunk.get("more_body"):
            break
    await communicator.wait(10)
    return start, body


class WebSocket:
    """A WebSocket connection to an ASGI app, driven by hand."""

    def __init__(self, app: Any, scope: Scope) -> None:
        self.communicator = ApplicationCommunicator(app, scope)

    async def connect(self) -> dict[str, Any]:
        """Send ``websocket.connect``; return the app's answer (accept or close)."""
        await self.communicator.send_input({"type": "websocket.connect"})
        return await self.communicator.receive_output(10)

    async def ask(self, text: str) -> str:
        await self.communicator.send_input({"type": "websocket.receive", "text": text})
        reply = await self.communicator.receive_output(10)
        assert reply["type"] == "websocket.send", reply
        return str(reply["text"])

    async def close(self) -> None:
        await self.communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.communicator.wait(10)


def ws_app(
    on_connect: Callable[[Scope], Awaitable[None]] | None = None,
) -> Callable[[Scope, Any, Any], Awaitable[None]]:
    """A WebSocket app: runs ``on_connect(scope)``, accepts, then answers commands:

    ``login:NAME`` -> logs that user in; ``user`` -> the scope user's username ("" if
    anonymous); ``get:KEY`` -> the session value; ``set:KEY=VALUE`` -> stores it; ``save``
    -> saves the session; ``key`` -> the session key.
    """

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        if on_connect is not None:
            await on_connect(scope)
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message["text"]
            if text.startswith("login:"):
                reply = await _login(scope, text[6:])
            else:
                reply = await database_sync_to_async(_command)(scope, text)
            await send({"type": "websocket.send", "text": reply})

    return app


async def _login(scope: Scope, username: str) -> str:
    from django.contrib.auth.models import User

    from narrows.auth import login

    user = await User.objects.aget(username=username)
    await login(scope, user)
    return str(scope["user"].username)


def _command(scope: Scope, text: str) -> str:
    session = scope.get("session")
    if text == "user":
        user = scope["user"]
        return str(user.get_username()) if user.is_authenticated else ""
    if text.startswith("get:"):
        return str(session.get(text[4:], "")) if session is not None else ""
    if text.startswith("set:"):
        key, _, value = text[4:].partition("=")
        session[key] = value  # type: ignore[index]
        return "ok"
    if text == "save":
        session.save()  # type: ignore[union-attr]
        return "saved"
    if text == "key":
        return str(session.session_key) if session is not None else ""
    raise AssertionError(f"unknown command {text!r}")


@database_sync_to_async
def session_data(engine: str, key: str) -> dict[str, Any]:
    """What the session store of ``engine`` holds for ``key`` (empty if none)."""
    from importlib import import_module

    store = import_module(engine).SessionStore(key)
    return dict(store.load()) if store.exists(key) else {}
