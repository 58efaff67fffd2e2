"""Cookies and Django sessions for HTTP and WebSocket scopes (the Channels API).

- ``CookieMiddleware`` parses the ``Cookie`` header into ``scope["cookies"]`` (the same dict
  Django's ``request.COOKIES`` holds) and offers ``set_cookie``/``delete_cookie`` helpers
  that add ``Set-Cookie`` headers to an outgoing ASGI message.
- ``SessionMiddleware`` puts the Django session named by the session cookie in
  ``scope["session"]``, with whatever ``SESSION_ENGINE`` is configured. It saves a modified
  session and sends its cookie with the response the way Django's own ``SessionMiddleware``
  does, on ``http.response.start`` and also on ``websocket.accept`` (a login made in
  ``connect()`` reaches the browser with the handshake response).
- ``SessionMiddlewareStack(inner)`` is ``CookieMiddleware(SessionMiddleware(inner))``.

Cookie formatting is Django's own (``HttpResponseBase.set_cookie``/``delete_cookie``), so
SameSite, Secure, HttpOnly, ``max_age`` (seconds or ``timedelta``) and ``expires`` (string
or datetime) behave exactly as on a Django response.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.core.exceptions import SuspiciousOperation
from django.http import HttpResponseBase, parse_cookie
from django.utils.functional import LazyObject
from django.utils.http import http_date

from narrows.db import database_sync_to_async
from narrows.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "RESPONSE_COOKIES_KEY",
    "CookieMiddleware",
    "InstanceSessionWrapper",
    "SessionMiddleware",
    "SessionMiddlewareStack",
]

#: Scope key (an ASGI extension key) holding a list of ``Set-Cookie`` headers that the
#: session middleware adds to the response start / handshake accept. ``narrows.auth.login``
#: queues the rotated CSRF cookie here.
RESPONSE_COOKIES_KEY = "narrows.response_cookies"

#: Messages that start the response to the client: the last chance to save the session
#: before the client may make its next request, and the only ones that can carry cookies.
_RESPONSE_START_TYPES = ("http.response.start", "websocket.accept", "websocket.http.response.start")


def _cookie_headers(response: HttpResponseBase) -> list[tuple[bytes, bytes]]:
    # ``Morsel.OutputString()`` is the header value without the "Set-Cookie:" prefix. The
    # name is spelled as Channels spells it (its users compare headers byte for byte).
    return [
        (b"Set-Cookie", morsel.OutputString().encode("latin-1"))
        for morsel in response.cookies.values()
    ]


class InvalidSameSite(ValueError, AssertionError):
    """A ``samesite`` other than "lax", "strict" or "none" (any case).

    Django raises ``ValueError``, Channels an ``AssertionError``; this is both, so code
    written for either keeps catching it.
    """


class SessionDeleted(SessionInterrupted, SuspiciousOperation):
    """The session was deleted (a logout elsewhere) before this response saved it.

    Django's ``SessionInterrupted`` and Channels' ``SuspiciousOperation`` at once.
    """


def _append_headers(message: Message, headers: Iterable[tuple[bytes, bytes]]) -> None:
    existing = message.get("headers")
    merged = list(existing) if existing is not None else []
    merged.extend(headers)
    message["headers"] = merged


class CookieMiddleware:
    """Parses the request's cookies into ``scope["cookies"]`` (a ``dict[str, str]``)."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "headers" not in scope:
            if scope.get("type") == "lifespan":
                return await self.inner(scope, receive, send)
            raise ValueError(
                "CookieMiddleware expected an HTTP or WebSocket scope with a 'headers' "
                f"key, got a {scope.get('type')!r} scope without one"
            )
        # HTTP/1.1 sends one Cookie header; HTTP/2 proxies may split it into several,
        # which RFC 9113 section 8.2.3 says to join with "; ".
        values = [value.decode("latin-1") for name, value in scope["headers"] if name == b"cookie"]
        cookies = parse_cookie("; ".join(values)) if values else {}
        return await self.inner(dict(scope, cookies=cookies), receive, send)

    @staticmethod
    def set_cookie(
        message: Message,
        key: str,
        value: str = "",
        max_age: int | float | timedelta | None = None,
        expires: str | datetime | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool | None = False,
        httponly: bool | None = False,
        samesite: str | None = "lax",
    ) -> None:
        """Add a ``Set-Cookie`` header to ``message`` (an ``http.response.start``,
        ``websocket.accept`` or ``websocket.http.response.start`` message), in place.

        Arguments mean what they mean for Django's ``HttpResponse.set_cookie``; the SameSite
        default is ``"lax"`` as in Channels. A bad ``samesite`` raises ``ValueError``.
        """
        response = HttpResponseBase()
        # django-stubs narrows these more than Django does (floats, any-case SameSite).
        max_age_arg: Any = max_age
        samesite_arg: Any = samesite
        _require_samesite(samesite)
        response.set_cookie(
            key,
            str(value),
            max_age=max_age_arg,
            expires=expires,
            path=path,
            domain=domain,
            secure=bool(secure),
            httponly=bool(httponly),
            samesite=samesite_arg,
        )
        _append_headers(message, _cookie_headers(response))

    @staticmethod
    def delete_cookie(
        message: Message,
        key: str,
        path: str = "/",
        domain: str | None = None,
        samesite: str | None = None,
    ) -> None:
        """Add a ``Set-Cookie`` header that deletes cookie ``key``, like Django's
        ``HttpResponse.delete_cookie`` (``Secure`` set for ``__Secure-``/``__Host-``
        names and for ``SameSite=None``, which browsers otherwise ignore)."""
        response = HttpResponseBase()
        samesite_arg: Any = samesite
        _require_samesite(samesite)
        response.delete_cookie(key, path=path, domain=domain, samesite=samesite_arg)
        _append_headers(message, _cookie_headers(response))


def _require_samesite(samesite: str | None) -> None:
    if samesite is not None and str(samesite).lower() not in ("lax", "none", "strict"):
        raise InvalidSameSite(f'samesite must be "lax", "none", or "strict", got {samesite!r}')


class SessionLazyObject(LazyObject):  # type: ignore[type-arg]
    """``scope["session"]``: proxies the session store loaded for this connection."""

    def _setup(self) -> None:
        raise ValueError("Accessing scope session before it is ready.")


class InstanceSessionWrapper:
    """The session of one connection (Channels' name and hooks): ``resolve_session()``
    loads it into ``scope["session"]``; ``send`` saves it and sends its cookie when the
    response starts. Subclass and override ``resolve_session`` to find the key elsewhere.
    """

    def __init__(self, scope: Scope, send: Send) -> None:
        self.cookie_name: str = settings.SESSION_COOKIE_NAME
        self.session_store: type[SessionBase] = import_module(settings.SESSION_ENGINE).SessionStore
        self.scope: Scope = dict(scope)
        self.pending_cookies: list[tuple[bytes, bytes]] = []
        if "session" in self.scope:
            # A session middleware further out owns the session; leave it alone.
            self.activated = False
        else:
            if "cookies" not in self.scope:
                raise ValueError(
                    "SessionMiddleware expected scope['cookies'] (wrap it in CookieMiddleware, "
                    "or use SessionMiddlewareStack), got a scope without cookies"
                )
            self.scope["session"] = SessionLazyObject()
            self.scope[RESPONSE_COOKIES_KEY] = self.pending_cookies
            self.activated = True
        self.real_send = send
        self.responded = False

    @property
    def store(self) -> SessionBase:
        store: SessionBase = self.scope["session"]._wrapped
        return store

    async def resolve_session(self) -> None:
        """Put the store for the cookie's session key in ``scope["session"]``.

        Creating a store does no I/O with any Django engine (loading is lazy), so no thread
        hop is needed; the first read happens in ``get_user`` or the application.
        """
        if self.activated:
            session_key = self.scope["cookies"].get(self.cookie_name)
            self.scope["session"]._wrapped = self.session_store(session_key)

    async def send(self, message: Message) -> None:
        if self.activated and not self.responded and message["type"] in _RESPONSE_START_TYPES:
            self.responded = True
            message = await self.finish(message)
        await self.real_send(message)

    async def finish(self, message: Message) -> Message:
        """Django's ``SessionMiddleware.process_response`` for an ASGI response start."""
        store = self.store
        is_http = message["type"] != "websocket.accept"
        failed = is_http and int(message.get("status", 200)) >= 500
        cookie_sent = self.cookie_name in self.scope["cookies"]
        needs_save = store.modified or settings.SESSION_SAVE_EVERY_REQUEST
        headers: list[tuple[bytes, bytes]] = list(self.pending_cookies)
        if (cookie_sent and store.is_empty()) or (needs_save and not failed):
            # Saving (and reading the expiry) may touch the database: do it in a thread.
            cookie_headers, vary = await database_sync_to_async(self._save)(cookie_sent, failed)
            headers.extend(cookie_headers)
        else:
            vary = store.accessed
        # Vary: Cookie only on a response that read the session and sets no cookie: that is
        # the one shared caches (nginx, Varnish, CDNs) store by default and could serve to
        # another user. Channels never sends it; a Set-Cookie response is not cached.
        if vary and not headers and message["type"] == "http.response.start":
            headers.extend(_vary_cookie(message))
        if not headers:
            return message
        message = dict(message)
        _append_headers(message, headers)
        return message

    def _save(self, cookie_sent: bool, failed: bool) -> tuple[list[tuple[bytes, bytes]], bool]:
        store = self.store
        out: Message = {}
        if cookie_sent and store.is_empty():
            CookieMiddleware.delete_cookie(
                out,
                self.cookie_name,
                path=settings.SESSION_COOKIE_PATH,
                domain=settings.SESSION_COOKIE_DOMAIN,
                samesite=settings.SESSION_COOKIE_SAMESITE,
            )
            return list(out.get("headers", [])), True
        vary = store.accessed
        if store.is_empty() or failed:
            return [], vary
        max_age: int | None = None
        expires: str | None = None
        if not store.get_expire_at_browser_close():
            max_age = store.get_expiry_age()
            expires = http_date(time.time() + max_age)
        self.save_session()
        CookieMiddleware.set_cookie(
            out,
            self.cookie_name,
            store.session_key or "",
            max_age=max_age,
            expires=expires,
            domain=settings.SESSION_COOKIE_DOMAIN,
            path=settings.SESSION_COOKIE_PATH,
            secure=settings.SESSION_COOKIE_SECURE or None,
            httponly=settings.SESSION_COOKIE_HTTPONLY or None,
            samesite=settings.SESSION_COOKIE_SAMESITE,
        )
        return list(out.get("headers", [])), True

    def save_session(self) -> None:
        """Save the session; a session deleted meanwhile raises ``SessionInterrupted``."""
        try:
            self.store.save()
        except UpdateError as exc:
            raise SessionDeleted(
                "The request's session was deleted before the request completed. "
                "The user may have logged out in a concurrent request, for example."
            ) from exc


def _vary_cookie(message: Message) -> list[tuple[bytes, bytes]]:
    """A ``Vary: Cookie`` header unless the response already varies on it (or on ``*``)."""
    for name, value in message.get("headers") or ():
        if name.lower() == b"vary":
            fields = {part.strip().lower() for part in value.split(b",")}
            if b"cookie" in fields or b"*" in fields:
                return []
    return [(b"vary", b"Cookie")]


class SessionMiddleware:
    """Adds the Django session to ``scope["session"]``; needs ``CookieMiddleware`` above.

    The session is saved (and its cookie sent) when the response starts, if it was
    modified, exactly as Django does for views: on ``http.response.start`` (not for 5xx),
    on ``websocket.accept`` and on a ``websocket.http.response.start`` denial. After the
    handshake a WebSocket cannot set cookies; save changes yourself with
    ``await database_sync_to_async(scope["session"].save)()`` as in Channels.
    """

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "lifespan":
            return await self.inner(scope, receive, send)
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, wrapper.send)


def SessionMiddlewareStack(inner: ASGIApp) -> CookieMiddleware:
    """``CookieMiddleware(SessionMiddleware(inner))``."""
    return CookieMiddleware(SessionMiddleware(inner))


def session_of(scope: Scope) -> Any:
    """The session in ``scope``, or raise the error Channels users know."""
    if "session" not in scope:
        raise ValueError(
            "Cannot find session in scope. You should wrap your consumer in SessionMiddleware."
        )
    return scope["session"]
