"""narrows.auth against a real database: get_user, login, logout, AuthMiddleware."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, user_logged_in, user_logged_out
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.models import Session
from django.middleware.csrf import CSRF_SESSION_KEY

from narrows.auth import (
    AuthMiddleware,
    AuthMiddlewareStack,
    UserLazyObject,
    get_user,
    login,
    logout,
)
from narrows.db import database_sync_to_async
from narrows.sessions import SessionMiddlewareStack
from tests.framework.auth_helpers import (
    WebSocket,
    cookie_header,
    http_get,
    http_scope,
    set_cookies,
    ws_app,
    ws_scope,
)

SESSION_COOKIE = django_settings.SESSION_COOKIE_NAME
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(_fast_hashing: None) -> User:
    return User.objects.create_user("alice", password="wonderland")


@pytest.fixture
def bob(_fast_hashing: None) -> User:
    return User.objects.create_user("bob", password="builder")


async def _login_connection(
    user: User, headers: Sequence[tuple[bytes, bytes]] = ()
) -> dict[str, Any]:
    """Log ``user`` in during connect(); return the accept message."""

    async def on_connect(scope: dict[str, Any]) -> None:
        await login(scope, user)

    ws = WebSocket(AuthMiddlewareStack(ws_app(on_connect)), ws_scope(headers=headers))
    accept = await ws.connect()
    assert accept["type"] == "websocket.accept"
    assert await ws.ask("user") == user.username
    await ws.close()
    return accept


async def _session_cookie_for(user: User) -> tuple[bytes, bytes]:
    accept = await _login_connection(user)
    return cookie_header(**{SESSION_COOKIE: set_cookies(accept)[SESSION_COOKIE].value})


async def test_anonymous_without_session_cookie() -> None:
    seen: dict[str, Any] = {}

    async def on_connect(scope: dict[str, Any]) -> None:
        seen["user"] = scope["user"]
        seen["lazy"] = isinstance(scope["user"], UserLazyObject)

    ws = WebSocket(AuthMiddlewareStack(ws_app(on_connect)), ws_scope())
    await ws.connect()
    assert await ws.ask("user") == ""
    await ws.close()
    assert seen["lazy"] and seen["user"].is_anonymous


async def test_login_in_connect_persists_across_connections(alice: User) -> None:
    cookie = await _session_cookie_for(alice)
    ws = WebSocket(AuthMiddlewareStack(ws_app()), ws_scope(headers=[cookie]))
    await ws.connect()
    assert await ws.ask("user") == "alice"
    await ws.close()


async def test_user_is_resolved_before_the_app_runs(alice: User) -> None:
    """Reading scope["user"] in async code must not touch the database."""
    cookie = await _session_cookie_for(alice)
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Direct ORM use here would raise SynchronousOnlyOperation if not loaded already.
        seen["name"] = scope["user"].username
        seen["authenticated"] = scope["user"].is_authenticated
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    await http_get(AuthMiddlewareStack(app), http_scope(headers=[cookie]))
    assert seen == {"name": "alice", "authenticated": True}


async def test_get_user_from_a_session(alice: User) -> None:
    cookie = await _session_cookie_for(alice)
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen["user"] = await get_user(scope)
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    await http_get(SessionMiddlewareStack(app), http_scope(headers=[cookie]))
    assert seen["user"] == alice


async def test_get_user_without_session_is_an_error() -> None:
    with pytest.raises(ValueError, match="SessionMiddleware"):
        await get_user({"type": "websocket"})


async def test_login_cycles_the_session_key(alice: User) -> None:
    """No session fixation: the pre-login session key stops working."""
    start, _ = await http_get(_store_app(), http_scope())
    anon_key = set_cookies(start)[SESSION_COOKIE].value
    assert await Session.objects.filter(session_key=anon_key).aexists()

    accept = await _login_connection(alice, [cookie_header(**{SESSION_COOKIE: anon_key})])
    new_key = set_cookies(accept)[SESSION_COOKIE].value
    assert new_key and new_key != anon_key
    assert not await Session.objects.filter(session_key=anon_key).aexists()
    session = await Session.objects.aget(session_key=new_key)
    data = session.get_decoded()
    assert data[SESSION_KEY] == str(alice.pk)
    assert data["before"] == "kept"  # anonymous data survives login, as in Django


def _store_app() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["session"]["before"] = "kept"
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    return SessionMiddlewareStack(app)


async def test_login_over_another_users_session_flushes_it(alice: User, bob: User) -> None:
    alice_cookie = await _session_cookie_for(alice)
    accept = await _login_connection(bob, [alice_cookie])
    bob_key = set_cookies(accept)[SESSION_COOKIE].value
    assert bob_key != alice_cookie[1].decode().split("=", 1)[1]
    session = await Session.objects.aget(session_key=bob_key)
    assert session.get_decoded()[SESSION_KEY] == str(bob.pk)


async def test_login_rotates_the_csrf_cookie(alice: User) -> None:
    old = "a" * 32
    accept = await _login_connection(alice, [cookie_header(csrftoken=old)])
    morsel = set_cookies(accept)[django_settings.CSRF_COOKIE_NAME]
    assert morsel.value and morsel.value != old
    assert len(morsel.value) == 32
    assert morsel["samesite"] == django_settings.CSRF_COOKIE_SAMESITE
    assert int(morsel["max-age"]) == django_settings.CSRF_COOKIE_AGE


async def test_login_rotates_the_csrf_token_in_session(alice: User, settings: Any) -> None:
    settings.CSRF_USE_SESSIONS = True
    accept = await _login_connection(alice)
    cookies = set_cookies(accept)
    assert django_settings.CSRF_COOKIE_NAME not in cookies
    session = await Session.objects.aget(session_key=cookies[SESSION_COOKIE].value)
    assert len(session.get_decoded()[CSRF_SESSION_KEY]) == 32


async def test_login_after_accept_is_saved_explicitly(alice: User) -> None:
    """After the handshake no cookie can be sent: the session is saved by hand, as in
    Channels, and the client learns the new key some other way (here: asks for it)."""
    start, _ = await http_get(_store_app(), http_scope())
    old_key = set_cookies(start)[SESSION_COOKIE].value
    cookie = cookie_header(**{SESSION_COOKIE: old_key})

    ws = WebSocket(AuthMiddlewareStack(ws_app()), ws_scope(headers=[cookie]))
    await ws.connect()
    assert await ws.ask("login:alice") == "alice"
    assert await ws.ask("save") == "saved"
    new_key = await ws.ask("key")
    await ws.close()
    assert new_key != old_key
    assert not await Session.objects.filter(session_key=old_key).aexists()
    ws = WebSocket(
        AuthMiddlewareStack(ws_app()), ws_scope(headers=[cookie_header(sessionid=new_key)])
    )
    await ws.connect()
    assert await ws.ask("user") == "alice"
    await ws.close()


async def test_logout_flushes_session_and_sends_signal(alice: User) -> None:
    cookie = await _session_cookie_for(alice)
    key = cookie[1].decode().split("=", 1)[1]
    received: list[Any] = []

    def on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        received.append((user, request.META.get("REMOTE_ADDR")))

    user_logged_out.connect(on_logout)
    seen: dict[str, Any] = {}
    try:

        async def on_connect(scope: dict[str, Any]) -> None:
            await logout(scope)
            seen["user"] = scope["user"]

        ws = WebSocket(AuthMiddlewareStack(ws_app(on_connect)), ws_scope(headers=[cookie]))
        accept = await ws.connect()
        assert await ws.ask("user") == ""
        await ws.close()
    finally:
        user_logged_out.disconnect(on_logout)
    assert received == [(alice, "127.0.0.1")]
    assert isinstance(seen["user"], AnonymousUser)
    assert not await Session.objects.filter(session_key=key).aexists()
    assert set_cookies(accept)[SESSION_COOKIE]["max-age"] == "0"  # cookie deleted

    ws = WebSocket(AuthMiddlewareStack(ws_app()), ws_scope(headers=[cookie]))
    await ws.connect()
    assert await ws.ask("user") == ""
    await ws.close()


async def test_login_signal_gets_a_request_with_the_clients_headers(alice: User) -> None:
    received: list[Any] = []

    def on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        received.append((user, request.META.get("HTTP_USER_AGENT"), request.session))

    user_logged_in.connect(on_login)
    try:
        await _login_connection(alice, [(b"user-agent", b"pytest-agent")])
    finally:
        user_logged_in.disconnect(on_login)
    assert len(received) == 1
    assert received[0][0] == alice and received[0][1] == "pytest-agent"
    # Django's own update_last_login receiver ran too.
    await alice.arefresh_from_db()
    assert alice.last_login is not None


async def test_password_change_logs_the_session_out(alice: User) -> None:
    cookie = await _session_cookie_for(alice)

    def change_password() -> None:
        alice.set_password("new password")
        alice.save()

    await database_sync_to_async(change_password)()
    ws = WebSocket(AuthMiddlewareStack(ws_app()), ws_scope(headers=[cookie]))
    await ws.connect()
    assert await ws.ask("user") == ""
    await ws.close()


async def test_secret_key_rotation_keeps_users_logged_in(alice: User, settings: Any) -> None:
    """A session hashed with a SECRET_KEY_FALLBACKS key is accepted and re-hashed."""
    cookie = await _session_cookie_for(alice)
    key = cookie[1].decode().split("=", 1)[1]
    old_hash = (await Session.objects.aget(session_key=key)).get_decoded()[HASH_SESSION_KEY]
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-brand-new-secret-key-for-narrows-tests"
    ws = WebSocket(AuthMiddlewareStack(ws_app()), ws_scope(headers=[cookie]))
    accept = await ws.connect()
    assert await ws.ask("user") == "alice"
    await ws.close()
    new_key = set_cookies(accept)[SESSION_COOKIE].value  # cycled, as Django does
    data = (await Session.objects.aget(session_key=new_key)).get_decoded()
    assert data[HASH_SESSION_KEY] != old_hash


async def test_login_requires_a_user() -> None:
    scope = {"type": "websocket", "session": object(), "user": AnonymousUser()}
    with pytest.raises(ValueError, match="expected an authenticated user"):
        await login(scope, None)


async def test_login_with_user_from_scope(alice: User) -> None:
    async def on_connect(scope: dict[str, Any]) -> None:
        scope["user"] = alice
        await login(scope, None)

    ws = WebSocket(AuthMiddlewareStack(ws_app(on_connect)), ws_scope())
    accept = await ws.connect()
    assert SESSION_COOKIE in set_cookies(accept)
    await ws.close()


async def test_login_with_several_backends_needs_one_named(alice: User, settings: Any) -> None:
    settings.AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "django.contrib.auth.backends.AllowAllUsersModelBackend",
    ]
    errors: list[Exception] = []

    async def on_connect(scope: dict[str, Any]) -> None:
        try:
            await login(scope, alice)
        except ValueError as exc:
            errors.append(exc)
        await login(scope, alice, backend="django.contrib.auth.backends.ModelBackend")

    ws = WebSocket(AuthMiddlewareStack(ws_app(on_connect)), ws_scope())
    await ws.connect()
    assert await ws.ask("user") == "alice"
    await ws.close()
    assert errors and "backend" in str(errors[0])


async def test_auth_middleware_needs_a_session() -> None:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not reached")

    with pytest.raises(ValueError, match="SessionMiddleware must be above it"):
        await AuthMiddleware(inner)(ws_scope(), None, None)  # type: ignore[arg-type]


async def test_auth_middleware_keeps_a_user_set_further_out(alice: User) -> None:
    seen: dict[str, Any] = {}

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen["user"] = scope["user"]
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    async def token_auth(scope: Any, receive: Any, send: Any) -> None:
        await AuthMiddleware(inner)(dict(scope, user=alice), receive, send)

    await http_get(SessionMiddlewareStack(token_auth), http_scope())
    assert seen["user"] is alice
    assert not hasattr(alice, "_wrapped")


async def test_sync_code_can_call_login(alice: User) -> None:
    """Sync consumers use async_to_sync(login), as with Channels."""
    from asgiref.sync import async_to_sync

    def sync_connect(scope: dict[str, Any]) -> None:
        async_to_sync(login)(scope, alice)

    async def on_connect(scope: dict[str, Any]) -> None:
        await sync_to_async(sync_connect)(scope)

    ws = WebSocket(AuthMiddlewareStack(ws_app(on_connect)), ws_scope())
    await ws.connect()
    assert await ws.ask("user") == "alice"
    await ws.close()
