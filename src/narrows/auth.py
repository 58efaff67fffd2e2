"""Django authentication for consumers: ``get_user``, ``login``, ``logout``, ``AuthMiddleware``.

Same API as Channels 4 (``await login(scope, user)``; ``async_to_sync(login)(...)`` from
sync code). The work is done by Django's own ``django.contrib.auth`` functions on an
``HttpRequest`` built from the scope, so every Django rule applies unchanged: the session
key is cycled on login (no session fixation), a session that belongs to another user is
flushed, the CSRF token is rotated, ``SECRET_KEY_FALLBACKS`` session hashes are upgraded,
and ``user_logged_in``/``user_logged_out`` receivers get a real request (with the client's
headers in ``META``) instead of Channels' ``request=None``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import auth as django_auth
from django.http import HttpRequest
from django.middleware.csrf import CSRF_SESSION_KEY
from django.utils.functional import LazyObject, empty

from narrows.db import database_sync_to_async
from narrows.middleware import BaseMiddleware
from narrows.sessions import (
    RESPONSE_COOKIES_KEY,
    CookieMiddleware,
    SessionMiddleware,
    session_of,
)
from narrows.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "AuthMiddleware",
    "AuthMiddlewareStack",
    "UserLazyObject",
    "get_user",
    "login",
    "logout",
]

if TYPE_CHECKING:
    # Model modules need the app registry: imported lazily, so that this module (like
    # Channels' auth) can be imported before django.setup(), e.g. by asgi.py.
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    AnyUser = AbstractBaseUser | AnonymousUser


def request_for_scope(scope: Scope) -> HttpRequest:
    """A Django ``HttpRequest`` carrying the scope's session, user, path and headers.

    Only what ``django.contrib.auth`` and signal receivers read is filled in; the body is
    empty (a WebSocket has none).
    """
    request = HttpRequest()
    request.session = session_of(scope)
    if "user" in scope:
        request.user = scope["user"]
    request.path = request.path_info = scope.get("path", "")
    request.method = scope.get("method", "GET")
    meta: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "PATH_INFO": request.path_info,
        "SCRIPT_NAME": scope.get("root_path", ""),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "wsgi.url_scheme": "https" if scope.get("scheme") in ("https", "wss") else "http",
    }
    client = scope.get("client")
    if client:
        meta["REMOTE_ADDR"], meta["REMOTE_PORT"] = client[0], client[1]
    server = scope.get("server")
    if server:
        meta["SERVER_NAME"], meta["SERVER_PORT"] = server[0], str(server[1] or "")
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        if name not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = "HTTP_" + name
        value = raw_value.decode("latin-1")
        meta[name] = f"{meta[name]},{value}" if name in meta else value
    request.META = meta
    return request


class UserLazyObject(LazyObject):  # type: ignore[type-arg]
    """``scope["user"]``: filled in by ``AuthMiddleware`` before the application runs."""

    def _setup(self) -> None:
        raise ValueError("Accessing scope user before it is ready.")


def _get_user_sync(scope: Scope) -> AnyUser:
    user: AnyUser = django_auth.get_user(request_for_scope(scope))
    return user


async def get_user(scope: Scope) -> AnyUser:
    """The user whose id is in the scope's session, or an ``AnonymousUser``.

    Verifies the session auth hash (a changed password logs the session out) as Django
    does. Needs ``SessionMiddleware``.
    """
    session_of(scope)
    return await database_sync_to_async(_get_user_sync)(scope)


def _login_sync(scope: Scope, user: AbstractBaseUser, backend: str | None) -> None:
    request = request_for_scope(scope)
    django_auth.login(request, user, backend=backend)
    scope["user"] = user
    _apply_rotated_csrf_token(scope, request)


def _apply_rotated_csrf_token(scope: Scope, request: HttpRequest) -> None:
    """Deliver the CSRF secret Django's ``rotate_token`` made during ``login``.

    Django's ``CsrfViewMiddleware`` would do this on the response; a consumer has none, so
    the secret goes into the session (``CSRF_USE_SESSIONS``) or, as a cookie, onto the
    response start / handshake accept through the session middleware. Channels skipped
    this and kept the pre-login token valid.
    """
    secret = request.META.get("CSRF_COOKIE")
    if not request.META.get("CSRF_COOKIE_NEEDS_UPDATE") or not secret:
        return
    if settings.CSRF_USE_SESSIONS:
        request.session[CSRF_SESSION_KEY] = secret
        return
    pending = scope.get(RESPONSE_COOKIES_KEY)
    if pending is None:
        return
    out: Message = {}
    CookieMiddleware.set_cookie(
        out,
        settings.CSRF_COOKIE_NAME,
        secret,
        max_age=settings.CSRF_COOKIE_AGE,
        domain=settings.CSRF_COOKIE_DOMAIN,
        path=settings.CSRF_COOKIE_PATH,
        secure=settings.CSRF_COOKIE_SECURE,
        httponly=settings.CSRF_COOKIE_HTTPONLY,
        samesite=settings.CSRF_COOKIE_SAMESITE,
    )
    # Replace an earlier queued CSRF cookie (two logins before the response starts).
    prefix = settings.CSRF_COOKIE_NAME.encode("latin-1") + b"="
    pending[:] = [header for header in pending if not header[1].startswith(prefix)]
    pending.extend(out["headers"])


async def login(scope: Scope, user: AbstractBaseUser | None, backend: str | None = None) -> None:
    """Log ``user`` in on the scope's session (``None``: the user already in the scope).

    Cycles the session key (or flushes a session that belongs to another user), stores the
    user id, backend and auth hash, rotates the CSRF token, sets ``scope["user"]`` and
    sends ``user_logged_in``. Before ``accept()`` the new session cookie goes out with the
    handshake; afterwards call ``scope["session"].save()`` as in Channels.
    """
    session_of(scope)
    if user is None:
        user = scope.get("user")
    if user is None:
        raise ValueError("User must be passed as an argument or must be present in the scope.")
    if not getattr(user, "is_authenticated", False):
        raise ValueError(
            "User must be passed as an argument or must be present in the scope: "
            f"expected an authenticated user, got {user!r}"
        )
    await database_sync_to_async(_login_sync)(scope, user, backend)


def _logout_sync(scope: Scope) -> None:
    user = scope.get("user")
    if getattr(user, "is_authenticated", False):
        django_auth.logout(request_for_scope(scope))
    else:
        # Nobody was logged in: no user_logged_out signal (as in Channels), just a fresh
        # session. Django's own logout() would send the signal with user=None.
        session_of(scope).flush()
    if "user" in scope:
        from django.contrib.auth.models import AnonymousUser

        scope["user"] = AnonymousUser()


async def logout(scope: Scope) -> None:
    """Flush the session and set ``scope["user"]`` to ``AnonymousUser``; sends
    ``user_logged_out`` with the user who was logged in, if somebody was."""
    session_of(scope)
    await database_sync_to_async(_logout_sync)(scope)


class AuthMiddleware(BaseMiddleware):
    """Puts the session's user in ``scope["user"]``; needs ``SessionMiddleware`` above.

    The user is loaded before the inner application runs, so reading ``scope["user"]`` in
    an async consumer never touches the database.
    """

    def populate_scope(self, scope: Scope) -> None:
        if "session" not in scope:
            raise ValueError(
                "AuthMiddleware cannot find session in scope. SessionMiddleware must be above it."
            )
        if "user" not in scope:
            scope["user"] = UserLazyObject()

    async def resolve_scope(self, scope: Scope) -> None:
        user = scope["user"]
        # Only fill a lazy object nobody filled yet: a user set by another middleware
        # further out (token auth, say) is kept as it is. Channels overwrote its
        # ``_wrapped`` attribute whatever it was.
        if isinstance(user, UserLazyObject) and user._wrapped is empty:
            user._wrapped = await get_user(scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "lifespan":
            return await self.inner(scope, receive, send)
        scope = dict(scope)
        self.populate_scope(scope)
        await self.resolve_scope(scope)
        return await self.inner(scope, receive, send)


def AuthMiddlewareStack(inner: ASGIApp) -> CookieMiddleware:
    """``CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))``."""
    return CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))
