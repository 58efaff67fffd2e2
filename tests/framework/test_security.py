"""narrows.security.websocket: origin validation and denial."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from narrows.security.websocket import (
    AllowedHostsOriginValidator,
    OriginValidator,
    WebsocketDenier,
)
from tests.framework.auth_helpers import WebSocket, http_scope, ws_scope


async def _accepted_app(scope: Any, receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    assert (await receive())["type"] == "websocket.disconnect"


async def _handshake(app: Any, headers: list[tuple[bytes, bytes]]) -> str:
    """'accept' or 'close': how ``app`` answers a handshake with ``headers``."""
    ws = WebSocket(app, ws_scope(headers=headers))
    answer = await ws.connect()
    if answer["type"] == "websocket.accept":
        await ws.close()
        return "accept"
    assert answer == {"type": "websocket.close"}
    await ws.communicator.wait(5)  # the denier returns without waiting for the client
    return "close"


def _origin(value: str | bytes) -> list[tuple[bytes, bytes]]:
    return [(b"origin", value if isinstance(value, bytes) else value.encode())]


CASES = [
    # (allowed patterns, Origin header, expected)
    (["example.com"], "http://example.com", "accept"),
    (["example.com"], "https://example.com:8443", "accept"),  # host-only: any scheme/port
    (["example.com"], "http://sub.example.com", "close"),
    (["example.com"], "http://example.com.evil.org", "close"),
    (["example.com"], "http://evil.org", "close"),
    (["EXAMPLE.com"], "http://Example.COM", "accept"),  # case-insensitive
    ([".example.com"], "http://example.com", "accept"),
    ([".example.com"], "http://a.b.example.com", "accept"),
    ([".example.com"], "http://badexample.com", "close"),
    (["*"], "http://anything.org:1234", "accept"),
    (["*"], "null", "accept"),
    (["example.com:8000"], "http://example.com:8000", "accept"),
    (["example.com:8000"], "http://example.com:8001", "close"),
    (["example.com:8000"], "http://example.com", "close"),
    (["http://example.com"], "http://example.com", "accept"),
    (["http://example.com"], "http://example.com:80", "accept"),  # default port
    (["http://example.com"], "https://example.com", "close"),  # scheme differs
    (["http://example.com"], "http://example.com:8080", "close"),
    (["https://example.com"], "https://example.com:443", "accept"),
    (["https://example.com:8443"], "https://example.com:8443", "accept"),
    (["https://example.com:8443"], "https://example.com", "close"),
    (["http://.example.com"], "http://www.example.com", "accept"),
    (["http://.example.com"], "https://www.example.com", "close"),
    (["[::1]"], "http://[::1]:8000", "accept"),
    (["127.0.0.1"], "http://127.0.0.1:8000", "accept"),
    ([".example.com"], "null", "close"),  # Channels raised AttributeError here
    (["example.com"], "file://", "close"),
    (["example.com"], "http://example.com:notaport", "close"),
    ([], "http://example.com", "close"),
    (["other.org", "example.com"], "http://example.com", "accept"),
]


@pytest.mark.parametrize(("allowed", "origin", "expected"), CASES)
async def test_origin_patterns(allowed: list[str], origin: str, expected: str) -> None:
    app = OriginValidator(_accepted_app, allowed)
    assert await _handshake(app, _origin(origin)) == expected


async def test_missing_origin_refused_by_default() -> None:
    assert await _handshake(OriginValidator(_accepted_app, ["example.com"]), []) == "close"


async def test_missing_origin_allowed_by_star() -> None:
    # Channels' rule: "*" lets non-browser clients (which send no Origin) in.
    assert await _handshake(OriginValidator(_accepted_app, ["*"]), []) == "accept"


async def test_missing_origin_allowed_when_asked() -> None:
    app = OriginValidator(_accepted_app, ["example.com"], allow_missing_origin=True)
    assert await _handshake(app, []) == "accept"
    assert await _handshake(app, _origin("http://evil.org")) == "close"


async def test_several_origin_headers_refused() -> None:
    app = OriginValidator(_accepted_app, ["*"])
    headers = _origin("http://example.com") + _origin("http://example.com")
    assert await _handshake(app, headers) == "close"


async def test_non_ascii_origin_refused() -> None:
    app = OriginValidator(_accepted_app, ["*"])
    assert await _handshake(app, _origin("http://exämple.com".encode())) == "close"


async def test_denied_connection_never_reaches_the_app() -> None:
    called = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)

    validator = OriginValidator(app, ["example.com"])
    assert await _handshake(validator, _origin("http://evil.org")) == "close"
    assert called == []


async def test_origin_validator_refuses_http_scopes() -> None:
    app = OriginValidator(_accepted_app, ["*"])
    with pytest.raises(ValueError, match="expected a 'websocket' scope, got 'http'"):
        await app(http_scope(), None, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad", ["", "http://", "example.com:0", "example.com:99999", "x:y", "[", "http://[::1"]
)
def test_bad_patterns_rejected_at_construction(bad: str) -> None:
    with pytest.raises(ValueError, match="expected an origin pattern"):
        OriginValidator(_accepted_app, [bad])


def test_a_single_string_is_not_a_pattern_list() -> None:
    with pytest.raises(TypeError, match="expected a list of origin patterns"):
        OriginValidator(_accepted_app, "example.com")


async def test_allowed_hosts_validator_reads_settings_per_connection(settings: Any) -> None:
    app = AllowedHostsOriginValidator(_accepted_app)
    settings.ALLOWED_HOSTS = [".example.com"]
    assert await _handshake(app, _origin("https://chat.example.com")) == "accept"
    assert await _handshake(app, _origin("http://localhost:8000")) == "close"
    settings.ALLOWED_HOSTS = ["localhost"]
    assert await _handshake(app, _origin("http://localhost:8000")) == "accept"
    assert await _handshake(app, _origin("https://chat.example.com")) == "close"
    assert await _handshake(app, []) == "close"


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("http://localhost:8000", "accept"),
        ("http://app.localhost:3000", "accept"),
        ("http://127.0.0.1:8000", "accept"),
        ("http://[::1]:8000", "accept"),
        ("http://example.com", "close"),
    ],
)
async def test_allowed_hosts_debug_localhost_variants(
    settings: Any, origin: str, expected: str
) -> None:
    settings.ALLOWED_HOSTS = []
    settings.DEBUG = True
    assert await _handshake(AllowedHostsOriginValidator(_accepted_app), _origin(origin)) == (
        expected
    )


async def test_allowed_hosts_empty_without_debug_refuses_everything(settings: Any) -> None:
    settings.ALLOWED_HOSTS = []
    settings.DEBUG = False
    app = AllowedHostsOriginValidator(_accepted_app)
    assert await _handshake(app, _origin("http://localhost:8000")) == "close"


async def test_allowed_hosts_validator_is_an_origin_validator() -> None:
    assert isinstance(AllowedHostsOriginValidator(_accepted_app), OriginValidator)


async def test_websocket_denier_as_asgi() -> None:
    assert await _handshake(WebsocketDenier.as_asgi(), []) == "close"


async def test_websocket_denier_client_gone_before_connect() -> None:
    ws = WebSocket(WebsocketDenier(), ws_scope())
    await ws.communicator.send_input({"type": "websocket.disconnect", "code": 1006})
    await ws.communicator.wait(5)
    assert await ws.communicator.receive_nothing()


PATTERNS = st.sampled_from(
    ["*", "example.com", ".example.com", "example.com:8000", "https://example.com", "[::1]"]
)


@hypothesis_settings(max_examples=150, deadline=None)
@given(origin=st.binary(max_size=60), allowed=st.lists(PATTERNS, max_size=3))
async def test_any_origin_is_accepted_or_refused_never_an_error(
    origin: bytes, allowed: list[str]
) -> None:
    app = OriginValidator(_accepted_app, allowed)
    assert await _handshake(app, _origin(origin)) in {"accept", "close"}


@hypothesis_settings(max_examples=150, deadline=None)
@given(pattern=st.text(max_size=30), origin=st.text(max_size=40))
def test_any_pattern_is_refused_clearly_or_validates_without_error(
    pattern: str, origin: str
) -> None:
    try:
        validator = OriginValidator(_accepted_app, [pattern])
    except ValueError as exc:
        assert "expected an origin pattern" in str(exc)
        return
    try:
        parsed = urlparse(origin.lower())
    except ValueError:
        return
    assert validator.validate_origin(parsed) in {True, False}


@hypothesis_settings(max_examples=100, deadline=None)
@given(hosts=st.lists(st.text(max_size=20), max_size=3), origin=st.text(max_size=40))
def test_any_allowed_hosts_setting_validates_without_error(hosts: list[str], origin: str) -> None:
    from django.test import override_settings

    validator = AllowedHostsOriginValidator(_accepted_app)
    try:
        parsed = urlparse(origin.lower())
    except ValueError:
        return
    with override_settings(ALLOWED_HOSTS=hosts):
        assert validator.validate_origin(parsed) in {True, False}
