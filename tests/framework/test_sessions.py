"""narrows.sessions: cookie parsing, Set-Cookie helpers, Django sessions over HTTP and WebSocket."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from narrows.db import database_sync_to_async
from narrows.sessions import (
    CookieMiddleware,
    InstanceSessionWrapper,
    SessionMiddleware,
    SessionMiddlewareStack,
)
from tests.framework.auth_helpers import (
    WebSocket,
    cookie_header,
    header_values,
    http_get,
    http_scope,
    set_cookies,
    ws_app,
    ws_scope,
)

ENGINES = [
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cache",
    "django.contrib.sessions.backends.cached_db",
    "django.contrib.sessions.backends.file",
    "django.contrib.sessions.backends.signed_cookies",
]


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    cache.clear()


# -- CookieMiddleware ---------------------------------------------------------------------


async def _seen_scope(app_factory: Any, scope: dict[str, Any]) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    await http_get(app_factory(inner), scope)
    return seen


async def test_cookie_middleware_parses_cookies() -> None:
    scope = http_scope(headers=[(b"cookie", b"a=1; b=two; empty=")])
    seen = await _seen_scope(CookieMiddleware, scope)
    assert seen["cookies"] == {"a": "1", "b": "two", "empty": ""}
    assert "cookies" not in scope  # the caller's scope is not modified


async def test_cookie_middleware_without_cookie_header_gives_empty_dict() -> None:
    seen = await _seen_scope(CookieMiddleware, http_scope())
    assert seen["cookies"] == {}


async def test_cookie_middleware_joins_split_cookie_headers() -> None:
    scope = http_scope(headers=[(b"cookie", b"a=1"), (b"cookie", b"b=2")])
    seen = await _seen_scope(CookieMiddleware, scope)
    assert seen["cookies"] == {"a": "1", "b": "2"}


async def test_cookie_middleware_refuses_scope_without_headers() -> None:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not reached")

    with pytest.raises(ValueError, match="expected an HTTP or WebSocket scope"):
        await CookieMiddleware(inner)({"type": "channel"}, None, None)  # type: ignore[arg-type]


async def test_cookie_middleware_passes_lifespan_through() -> None:
    seen = {}

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope)

    await CookieMiddleware(inner)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == {"type": "lifespan"}


def test_set_cookie_defaults_to_samesite_lax_and_path() -> None:
    message: dict[str, Any] = {"type": "http.response.start", "status": 200}
    CookieMiddleware.set_cookie(message, "flavour", "oatmeal")
    (header,) = message["headers"]
    assert header[0] == b"Set-Cookie"  # spelled as Channels does
    assert not header[1].startswith(b" ")
    morsel = set_cookies(message)["flavour"]
    assert morsel.value == "oatmeal"
    assert morsel["samesite"] == "lax"
    assert morsel["path"] == "/"
    assert not morsel["secure"] and not morsel["httponly"]


def test_set_cookie_honours_flags_like_django() -> None:
    message: dict[str, Any] = {"type": "websocket.accept", "headers": [(b"x-a", b"1")]}
    CookieMiddleware.set_cookie(
        message,
        "k",
        "v",
        max_age=3600,
        domain=".example.com",
        path="/app",
        secure=True,
        httponly=True,
        samesite="Strict",
    )
    assert message["headers"][0] == (b"x-a", b"1")
    morsel = set_cookies(message)["k"]
    assert morsel["max-age"] == "3600"
    assert morsel["expires"]  # Django adds expires alongside max-age
    assert morsel["domain"] == ".example.com"
    assert morsel["path"] == "/app"
    assert morsel["secure"] is True and morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"


def test_set_cookie_datetime_expires_and_timedelta_max_age() -> None:
    message: dict[str, Any] = {}
    later = dt.datetime.now(tz=dt.UTC) + dt.timedelta(hours=1)
    CookieMiddleware.set_cookie(message, "a", "1", expires=later, samesite=None)
    CookieMiddleware.set_cookie(message, "b", "2", max_age=dt.timedelta(minutes=2))
    morsels = set_cookies(message)
    assert 3590 <= int(morsels["a"]["max-age"]) <= 3601
    assert morsels["a"]["samesite"] == ""
    assert morsels["b"]["max-age"] == "120"


def test_set_cookie_rejects_bad_samesite() -> None:
    with pytest.raises(ValueError, match="samesite must be"):
        CookieMiddleware.set_cookie({}, "k", "v", samesite="sometimes")


def test_delete_cookie_expires_it_and_secures_samesite_none() -> None:
    message: dict[str, Any] = {}
    CookieMiddleware.delete_cookie(message, "gone", samesite="None")
    CookieMiddleware.delete_cookie(message, "__Host-x")
    morsels = set_cookies(message)
    assert morsels["gone"]["max-age"] == "0"
    assert "1970" in morsels["gone"]["expires"]
    assert morsels["gone"]["secure"] is True  # browsers drop SameSite=None without Secure
    assert morsels["__Host-x"]["secure"] is True


# -- SessionMiddleware over HTTP ----------------------------------------------------------


def _session_http_app() -> Any:
    """GET /set/<value> stores it in the session; /get returns it; /boom answers 500;
    /clear flushes the session; /peek reads the session without changing it."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        session = scope["session"]
        path = scope["path"]
        status = 200

        def work() -> bytes:
            if path.startswith("/set/"):
                session["value"] = path[5:]
                return b"stored"
            if path == "/clear":
                session.flush()
                return b"cleared"
            if path == "/boom":
                session["value"] = "lost"
                return b"error"
            return str(session.get("value", "")).encode()

        body = await database_sync_to_async(work)()
        if path == "/boom":
            status = 500
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return SessionMiddlewareStack(app)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("engine", ENGINES)
async def test_session_persists_across_requests_with_every_engine(
    engine: str, settings: Any, tmp_path: Any
) -> None:
    settings.SESSION_ENGINE = engine
    settings.SESSION_FILE_PATH = str(tmp_path)
    app = _session_http_app()
    start, body = await http_get(app, http_scope("/set/blue"))
    assert body == b"stored"
    morsel = set_cookies(start)[django_settings.SESSION_COOKIE_NAME]
    assert morsel.value
    assert morsel["samesite"] == django_settings.SESSION_COOKIE_SAMESITE
    assert morsel["httponly"] is True
    assert int(morsel["max-age"]) == django_settings.SESSION_COOKIE_AGE
    # A Set-Cookie response is not stored by shared caches: no Vary, as in Channels.
    assert header_values(start, b"vary") == []

    cookie = cookie_header(**{django_settings.SESSION_COOKIE_NAME: morsel.value})
    start, body = await http_get(app, http_scope("/get", [cookie]))
    assert body == b"blue"
    assert set_cookies(start) == {}  # read-only: no new cookie
    # The session was read and nothing marks the response as private: Vary: Cookie.
    assert header_values(start, b"vary") == [b"Cookie"]


@pytest.mark.django_db(transaction=True)
async def test_session_cookie_settings_are_honoured(settings: Any) -> None:
    settings.SESSION_COOKIE_SAMESITE = "Strict"
    settings.SESSION_COOKIE_SECURE = True
    settings.SESSION_COOKIE_HTTPONLY = False
    settings.SESSION_COOKIE_DOMAIN = ".example.com"
    settings.SESSION_COOKIE_PATH = "/app"
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True
    start, _ = await http_get(_session_http_app(), http_scope("/set/x"))
    morsel = set_cookies(start)[django_settings.SESSION_COOKIE_NAME]
    assert morsel["samesite"] == "Strict"
    assert morsel["secure"] is True
    assert not morsel["httponly"]
    assert morsel["domain"] == ".example.com"
    assert morsel["path"] == "/app"
    assert morsel["max-age"] == "" and morsel["expires"] == ""  # a browser-session cookie


@pytest.mark.django_db(transaction=True)
async def test_session_not_saved_on_server_error() -> None:
    start, _ = await http_get(_session_http_app(), http_scope("/boom"))
    assert start["status"] == 500
    assert set_cookies(start) == {}
    from django.contrib.sessions.models import Session

    assert await Session.objects.acount() == 0


@pytest.mark.django_db(transaction=True)
async def test_emptied_session_deletes_the_cookie() -> None:
    app = _session_http_app()
    start, _ = await http_get(app, http_scope("/set/red"))
    key = set_cookies(start)[django_settings.SESSION_COOKIE_NAME].value
    cookie = cookie_header(**{django_settings.SESSION_COOKIE_NAME: key})
    start, _ = await http_get(app, http_scope("/clear", [cookie]))
    morsel = set_cookies(start)[django_settings.SESSION_COOKIE_NAME]
    assert morsel.value == "" and morsel["max-age"] == "0"
    assert morsel["samesite"] == django_settings.SESSION_COOKIE_SAMESITE


@pytest.mark.django_db(transaction=True)
async def test_unknown_session_cookie_gives_a_fresh_session() -> None:
    cookie = cookie_header(**{django_settings.SESSION_COOKIE_NAME: "nosuchkey" * 4})
    start, body = await http_get(_session_http_app(), http_scope("/get", [cookie]))
    assert body == b""
    # the stale cookie is deleted, as Django does for an empty session
    assert set_cookies(start)[django_settings.SESSION_COOKIE_NAME]["max-age"] == "0"


@pytest.mark.django_db(transaction=True)
async def test_save_every_request(settings: Any) -> None:
    settings.SESSION_SAVE_EVERY_REQUEST = True
    app = _session_http_app()
    start, _ = await http_get(app, http_scope("/set/green"))
    key = set_cookies(start)[django_settings.SESSION_COOKIE_NAME].value
    cookie = cookie_header(**{django_settings.SESSION_COOKIE_NAME: key})
    start, body = await http_get(app, http_scope("/get", [cookie]))
    assert body == b"green"
    assert set_cookies(start)[django_settings.SESSION_COOKIE_NAME].value == key


async def test_session_middleware_needs_cookie_middleware() -> None:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not reached")

    with pytest.raises(ValueError, match=r"expected scope\['cookies'\]"):
        await SessionMiddleware(inner)(http_scope(), None, None)  # type: ignore[arg-type]


async def test_inner_session_middleware_keeps_the_outer_session() -> None:
    seen: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["session"])
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    async def outer_probe(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["session"])
        await SessionMiddleware(inner)(scope, receive, send)

    await http_get(SessionMiddlewareStack(outer_probe), http_scope())
    assert seen[0] is seen[1]


async def test_vary_cookie_not_duplicated() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["session"].get("anything")  # accessed; nothing loaded from the db
        headers = [(b"Vary", b"cookie")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body"})

    start, _ = await http_get(SessionMiddlewareStack(app), http_scope())
    assert header_values(start, b"vary") == [b"cookie"]


# -- SessionMiddleware over WebSocket -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_session_set_before_accept_is_saved_and_cookie_sent_with_handshake() -> None:
    async def on_connect(scope: dict[str, Any]) -> None:
        scope["session"]["theme"] = "dark"  # a fresh session: nothing to load

    ws = WebSocket(SessionMiddlewareStack(ws_app(on_connect)), ws_scope())
    accept = await ws.connect()
    assert accept["type"] == "websocket.accept"
    morsel = set_cookies(accept)[django_settings.SESSION_COOKIE_NAME]
    assert header_values(accept, b"vary") == []  # not meaningful on a 101
    await ws.close()

    cookie = cookie_header(**{django_settings.SESSION_COOKIE_NAME: morsel.value})
    ws = WebSocket(SessionMiddlewareStack(ws_app()), ws_scope(headers=[cookie]))
    accept = await ws.connect()
    assert set_cookies(accept) == {}
    assert await ws.ask("get:theme") == "dark"
    await ws.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "engine",
    [e for e in ENGINES if not e.endswith("signed_cookies")],
)
async def test_session_saved_after_accept_persists_across_connections(
    engine: str, settings: Any, tmp_path: Any
) -> None:
    settings.SESSION_ENGINE = engine
    settings.SESSION_FILE_PATH = str(tmp_path)
    # An HTTP request creates the session, as a Django view would.
    start, _ = await http_get(_session_http_app(), http_scope("/set/first"))
    key = set_cookies(start)[django_settings.SESSION_COOKIE_NAME].value
    cookie = cookie_header(**{django_settings.SESSION_COOKIE_NAME: key})

    ws = WebSocket(SessionMiddlewareStack(ws_app()), ws_scope(headers=[cookie]))
    await ws.connect()
    assert await ws.ask("get:value") == "first"
    assert await ws.ask("set:value=second") == "ok"
    assert await ws.ask("save") == "saved"
    await ws.close()

    ws = WebSocket(SessionMiddlewareStack(ws_app()), ws_scope(headers=[cookie]))
    await ws.connect()
    assert await ws.ask("get:value") == "second"
    assert await ws.ask("key") == key
    await ws.close()
    _, body = await http_get(_session_http_app(), http_scope("/get", [cookie]))
    assert body == b"second"


@hypothesis_settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=80))
async def test_any_cookie_header_parses(raw: bytes) -> None:
    seen = await _seen_scope(CookieMiddleware, http_scope(headers=[(b"cookie", raw)]))
    assert isinstance(seen["cookies"], dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in seen["cookies"].items())


@pytest.mark.django_db(transaction=True)
async def test_instance_session_wrapper_can_be_customised() -> None:
    """Channels projects subclass InstanceSessionWrapper to find the key elsewhere."""

    class QueryKeyWrapper(InstanceSessionWrapper):
        async def resolve_session(self) -> None:
            key = self.scope["query_string"].decode() or None
            self.scope["session"]._wrapped = self.session_store(key)

    class QuerySessionMiddleware(SessionMiddleware):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            wrapper = QueryKeyWrapper(scope, send)
            await wrapper.resolve_session()
            return await self.inner(wrapper.scope, receive, wrapper.send)

    start, _ = await http_get(_session_http_app(), http_scope("/set/violet"))
    key = set_cookies(start)[django_settings.SESSION_COOKIE_NAME].value
    scope = ws_scope()
    scope["query_string"] = key.encode()
    ws = WebSocket(CookieMiddleware(QuerySessionMiddleware(ws_app())), scope)
    await ws.connect()
    assert await ws.ask("get:value") == "violet"
    await ws.close()
