"""Routing: ProtocolTypeRouter, URLRouter (nesting, kwargs, root_path), ChannelNameRouter."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.urls import include, path, re_path
from hypothesis import given, settings
from hypothesis import strategies as st

from narrows.routing import (
    ChannelNameRouter,
    ProtocolTypeRouter,
    URLRouter,
    get_default_application,
)


class Recorder:
    """An ASGI app that records the scope it was called with."""

    def __init__(self, name: str = "app") -> None:
        self.name = name
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)

    @property
    def scope(self) -> dict[str, Any]:
        assert self.scopes, f"{self.name} was never called"
        return self.scopes[-1]


async def noop_receive() -> dict[str, Any]:
    return {"type": "noop"}


async def noop_send(message: Any) -> None:
    pass


async def route(app: Any, scope: dict[str, Any]) -> None:
    await app(scope, noop_receive, noop_send)


def ws(path_: str, **extra: Any) -> dict[str, Any]:
    return {"type": "websocket", "path": path_, **extra}


# --- ProtocolTypeRouter ------------------------------------------------------------------------


async def test_protocol_type_router_dispatches_on_type() -> None:
    http, websocket = Recorder("http"), Recorder("websocket")
    router = ProtocolTypeRouter({"http": http, "websocket": websocket})
    await route(router, {"type": "websocket", "path": "/"})
    await route(router, {"type": "http", "path": "/x"})
    assert websocket.scope["type"] == "websocket"
    assert http.scope["path"] == "/x"


async def test_protocol_type_router_accepts_lifespan() -> None:
    lifespan = Recorder("lifespan")
    router = ProtocolTypeRouter({"http": Recorder(), "lifespan": lifespan})
    await route(router, {"type": "lifespan"})
    assert lifespan.scope == {"type": "lifespan"}


async def test_protocol_type_router_runs_a_lifespan_consumer() -> None:
    from narrows.consumer import AsyncConsumer
    from narrows.exceptions import StopConsumer
    from narrows.testing import ApplicationCommunicator

    events: list[str] = []

    class Lifespan(AsyncConsumer):
        async def lifespan_startup(self, message: Any) -> None:
            events.append("startup")
            await self.send({"type": "lifespan.startup.complete"})

        async def lifespan_shutdown(self, message: Any) -> None:
            events.append("shutdown")
            await self.send({"type": "lifespan.shutdown.complete"})
            raise StopConsumer

    router = ProtocolTypeRouter({"http": Recorder(), "lifespan": Lifespan.as_asgi()})
    comm = ApplicationCommunicator(router, {"type": "lifespan", "asgi": {"version": "3.0"}})
    await comm.send_input({"type": "lifespan.startup"})
    assert await comm.receive_output() == {"type": "lifespan.startup.complete"}
    await comm.send_input({"type": "lifespan.shutdown"})
    assert await comm.receive_output() == {"type": "lifespan.shutdown.complete"}
    await comm.wait()
    assert events == ["startup", "shutdown"]


async def test_protocol_type_router_unknown_type_names_known_ones() -> None:
    router = ProtocolTypeRouter({"http": Recorder(), "websocket": Recorder()})
    with pytest.raises(ValueError) as info:
        await route(router, {"type": "lifespan"})
    message = str(info.value)
    assert "'lifespan'" in message
    assert "'http'" in message and "'websocket'" in message


def test_protocol_type_router_rejects_non_mapping() -> None:
    with pytest.raises(TypeError, match="expected a mapping"):
        ProtocolTypeRouter([("http", Recorder())])  # type: ignore[arg-type]


async def test_protocol_type_router_wraps_asgi2_double_callable() -> None:
    seen: list[Any] = []

    class Asgi2App:
        def __init__(self, scope: Any) -> None:
            seen.append(scope)

        async def __call__(self, receive: Any, send: Any) -> None:
            seen.append("called")

    router = ProtocolTypeRouter({"http": Asgi2App})
    await route(router, {"type": "http", "path": "/"})
    assert seen == [{"type": "http", "path": "/"}, "called"]


# --- URLRouter ---------------------------------------------------------------------------------


async def test_url_router_path_and_kwargs() -> None:
    chat = Recorder()
    router = URLRouter([path("chat/<str:room>/", chat)])
    await route(router, ws("/chat/lobby/"))
    assert chat.scope["url_route"] == {"args": (), "kwargs": {"room": "lobby"}}
    assert chat.scope["path"] == "/chat/lobby/"


async def test_url_router_re_path_positional_args() -> None:
    app = Recorder()
    router = URLRouter([re_path(r"^items/(\d+)/(\w+)/$", app)])
    await route(router, ws("/items/12/abc/"))
    assert app.scope["url_route"] == {"args": ("12", "abc"), "kwargs": {}}


async def test_url_router_converters_apply() -> None:
    app = Recorder()
    router = URLRouter([path("n/<int:number>/", app)])
    await route(router, ws("/n/42/"))
    assert app.scope["url_route"]["kwargs"] == {"number": 42}


async def test_url_router_default_kwargs_from_path() -> None:
    app = Recorder()
    router = URLRouter([path("feed/", app, {"kind": "all"})])
    await route(router, ws("/feed/"))
    assert app.scope["url_route"]["kwargs"] == {"kind": "all"}


async def test_url_router_first_match_wins_and_endpoint_is_anchored() -> None:
    exact, fallback = Recorder("exact"), Recorder("fallback")
    router = URLRouter([path("a/", exact), re_path(r"^a/", fallback)])
    await route(router, ws("/a/extra/"))
    assert not exact.scopes  # path() is an endpoint: "a/" does not match "a/extra/"
    assert fallback.scopes


async def test_url_router_nested_merges_kwargs_and_sets_path_remaining() -> None:
    inner = Recorder()
    router = URLRouter(
        [
            path(
                "rooms/<str:room>/",
                URLRouter([path("users/<int:user>/", inner)]),
            )
        ]
    )
    await route(router, ws("/rooms/blue/users/7/"))
    assert inner.scope["url_route"] == {"args": (), "kwargs": {"room": "blue", "user": 7}}
    assert inner.scope["path_remaining"] == ""
    assert inner.scope["path"] == "/rooms/blue/users/7/"


async def test_url_router_nested_re_path_args_are_concatenated() -> None:
    inner = Recorder()
    router = URLRouter([re_path(r"^(\d+)/", URLRouter([re_path(r"^(\w+)/$", inner)]))])
    await route(router, ws("/1/two/"))
    assert inner.scope["url_route"]["args"] == ("1", "two")


async def test_url_router_nested_no_match_falls_through_to_next_outer_route() -> None:
    inner, other = Recorder("inner"), Recorder("other")
    router = URLRouter(
        [
            path("api/", URLRouter([path("v1/", inner)])),
            re_path(r"^api/v2/$", other),
        ]
    )
    await route(router, ws("/api/v2/"))
    assert not inner.scopes
    assert other.scopes


async def test_url_router_no_route_raises_value_error() -> None:
    router = URLRouter([path("a/", Recorder())])
    with pytest.raises(
        ValueError, match=r"No route found for path 'b/'|No route found for path '/b/'"
    ):
        await route(router, ws("/b/"))


async def test_url_router_nested_no_route_raises_value_error_at_top() -> None:
    router = URLRouter([path("api/", URLRouter([path("v1/", Recorder())]))])
    with pytest.raises(ValueError, match="No route found for path"):
        await route(router, ws("/api/v9/"))


async def test_url_router_missing_path_key() -> None:
    router = URLRouter([path("a/", Recorder())])
    with pytest.raises(ValueError, match="No 'path' key"):
        await route(router, {"type": "websocket"})


async def test_url_router_strips_root_path() -> None:
    app = Recorder()
    router = URLRouter([path("chat/<str:room>/", app)])
    await route(router, ws("/prefix/chat/x/", root_path="/prefix"))
    assert app.scope["url_route"]["kwargs"] == {"room": "x"}


@pytest.mark.parametrize(
    "path_",
    [
        "/prefixed/",  # "/prefix" is not a path segment of "/prefixed/"
        "/chat/",  # outside the mount point altogether
    ],
)
async def test_url_router_path_outside_root_path_is_not_routed(path_: str) -> None:
    app = Recorder()
    router = URLRouter([path("prefixed/", app), path("chat/", app), path("ed/", app)])
    with pytest.raises(ValueError, match="outside root_path '/prefix'"):
        await route(router, ws(path_, root_path="/prefix"))
    assert not app.scopes


def test_url_router_refuses_include() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"include\(\) is not supported"):
        URLRouter([path("x/", include([path("y/", Recorder())]))])


def test_url_router_refuses_non_route_entries() -> None:
    with pytest.raises(ImproperlyConfigured, match="expected path"):
        URLRouter([Recorder()])  # type: ignore[list-item]


async def test_url_router_routes_http_scopes_to_consumer_apps() -> None:
    from narrows.consumer import AsyncConsumer
    from narrows.exceptions import StopConsumer
    from narrows.testing import HttpCommunicator

    class Hello(AsyncConsumer):
        async def http_request(self, message: Any) -> None:
            room = self.scope["url_route"]["kwargs"]["room"]
            await self.send({"type": "http.response.start", "status": 200})
            await self.send({"type": "http.response.body", "body": room.encode()})
            raise StopConsumer

    router = URLRouter([path("e/<str:room>/", Hello.as_asgi())])
    response = await HttpCommunicator(router, "GET", "/e/lobby/").get_response()
    assert response["status"] == 200
    assert response["body"] == b"lobby"


# --- ChannelNameRouter -------------------------------------------------------------------------


async def test_channel_name_router() -> None:
    thumbs, mail = Recorder("thumbs"), Recorder("mail")
    router = ChannelNameRouter({"thumbnails": thumbs, "mail": mail})
    await route(router, {"type": "channel", "channel": "mail"})
    assert mail.scope["channel"] == "mail"
    assert not thumbs.scopes


async def test_channel_name_router_errors() -> None:
    router = ChannelNameRouter({"mail": Recorder()})
    with pytest.raises(ValueError, match="without a 'channel' key"):
        await route(router, {"type": "http"})
    with pytest.raises(ValueError, match=r"No application configured for channel name 'x'.*'mail'"):
        await route(router, {"type": "channel", "channel": "x"})


# --- get_default_application -------------------------------------------------------------------

default_app = Recorder("default")


def test_get_default_application_reads_setting() -> None:
    with override_settings(ASGI_APPLICATION="tests.framework.test_routing.default_app"):
        assert get_default_application() is default_app


@pytest.mark.parametrize(
    ("setting", "error"),
    [
        (None, "Cannot find ASGI_APPLICATION setting"),
        ("nodots", "Cannot find ASGI_APPLICATION setting"),
        ("tests.framework.no_such_module.app", "Cannot import ASGI_APPLICATION module"),
        ("tests.framework.test_routing.missing", "Cannot find 'missing'"),
    ],
)
def test_get_default_application_errors(setting: Any, error: str) -> None:
    with (
        override_settings(ASGI_APPLICATION=setting),
        pytest.raises(ImproperlyConfigured, match=error),
    ):
        get_default_application()


# --- any path either routes or is refused with ValueError ------------------------------------

PROPERTY_ROUTER = URLRouter(
    [
        path("rooms/<str:room>/", URLRouter([path("users/<int:user>/", Recorder())])),
        re_path(r"^ws/(?P<name>[a-z]+)/$", Recorder()),
        path("<slug:slug>/", Recorder()),
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from("/abcz019-_.%é ?#"),
        max_size=40,
    ).map(lambda s: "/" + s),
    st.sampled_from(["", "/rooms", "/prefix/"]),
)
def test_any_path_routes_or_raises_value_error(path_: str, root_path: str) -> None:
    import asyncio

    try:
        asyncio.run(route(PROPERTY_ROUTER, ws(path_, root_path=root_path)))
    except ValueError as exc:
        assert "No route found for path" in str(exc)
