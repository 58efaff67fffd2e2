"""Origin checks for WebSocket handshakes: ``OriginValidator``, ``AllowedHostsOriginValidator``,
``WebsocketDenier`` (the Channels API).

Browsers send an ``Origin`` header with every WebSocket handshake and, unlike with
``fetch``, do not enforce any same-origin policy on the answer; checking it is what stops a
page on another site from opening a socket with the user's cookies (cross-site WebSocket
hijacking). A refused handshake is closed before ``accept``, which the server answers with
HTTP 403.

Patterns (``allowed_origins``), as Channels accepts them:

- ``"*"``: any origin;
- ``"example.com"``: that host, any scheme and port; ``".example.com"``: it and every
  subdomain (Django ``ALLOWED_HOSTS`` rules, ``django.utils.http.is_same_domain``);
- ``"example.com:8000"``: that host on that port only (Channels ignored the port here);
- ``"https://example.com"``, ``"http://.example.com:8080"``: scheme, host (with the same
  subdomain rule) and port all match; a missing port means the scheme's default (80 for
  http/ws, 443 for https/wss).

A handshake without an ``Origin`` header does not come from a browser (browsers always send
one, so it cannot carry a victim's cookies from another site); it is allowed when the
patterns include ``"*"`` (as in Channels) or with ``allow_missing_origin=True``, refused
otherwise. Several ``Origin``
headers or a non-ASCII one are refused whatever the patterns; ``null`` or an origin without
a host matches only ``"*"`` (Channels crashed on them with dot patterns).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import ParseResult, urlparse

from django.conf import settings
from django.utils.http import is_same_domain

from narrows.types import ASGIApp, Receive, Scope, Send

__all__ = ["AllowedHostsOriginValidator", "OriginValidator", "WebsocketDenier"]

_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
#: What Django allows when ``DEBUG`` is on and ``ALLOWED_HOSTS`` is empty.
_DEBUG_HOSTS = (".localhost", "127.0.0.1", "[::1]")


class WebsocketDenier:
    """An ASGI application that refuses every WebSocket connection.

    Closing before ``accept`` makes the server answer the handshake with HTTP 403. Unlike
    Channels' denier (a consumer), it never registers a channel on the channel layer.
    """

    def __init__(self, **initkwargs: Any) -> None:
        self.initkwargs = initkwargs

    @classmethod
    def as_asgi(cls, **initkwargs: Any) -> WebsocketDenier:
        return cls(**initkwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "websocket":
            raise ValueError(
                f"WebsocketDenier expected a 'websocket' scope, got {scope.get('type')!r}"
            )
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close"})


def _origin_port(parsed: ParseResult) -> int | None:
    if parsed.port is not None:
        return parsed.port
    return _DEFAULT_PORTS.get(parsed.scheme)


class OriginValidator:
    """Passes WebSocket connections whose ``Origin`` matches ``allowed_origins`` to
    ``application``; refuses the others with ``WebsocketDenier`` (HTTP 403)."""

    def __init__(
        self,
        application: ASGIApp,
        allowed_origins: Iterable[str],
        *,
        allow_missing_origin: bool = False,
    ) -> None:
        if isinstance(allowed_origins, str):
            raise TypeError(
                "OriginValidator expected a list of origin patterns, got the string "
                f"{allowed_origins!r} (write [{allowed_origins!r}])"
            )
        self.application = application
        self.allowed_origins = list(allowed_origins)
        self.allow_missing_origin = allow_missing_origin
        for pattern in self.allowed_origins:
            _check_pattern(pattern)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "websocket":
            raise ValueError(
                f"OriginValidator expected a 'websocket' scope, got {scope.get('type')!r} "
                "(wrap only the websocket entry of ProtocolTypeRouter in it)"
            )
        origins = [value for name, value in scope.get("headers", ()) if name == b"origin"]
        if len(origins) > 1:
            allowed = False  # ambiguous: which one would the browser have meant?
        elif not origins:
            allowed = self.valid_origin(None)
        else:
            try:
                parsed: ParseResult | None = urlparse(origins[0].decode("ascii").lower())
            except (UnicodeDecodeError, ValueError):
                parsed = None
            allowed = parsed is not None and self.valid_origin(parsed)
        if allowed:
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        """``None`` (no ``Origin`` header) is valid with ``"*"`` or ``allow_missing_origin``."""
        if parsed_origin is None:
            return self.allow_missing_origin or "*" in self.get_allowed_origins()
        return self.validate_origin(parsed_origin)

    def validate_origin(self, parsed_origin: ParseResult) -> bool:
        """True when ``parsed_origin`` matches one of the allowed patterns."""
        return any(
            pattern == "*" or self.match_allowed_origin(parsed_origin, pattern)
            for pattern in self.get_allowed_origins()
        )

    def get_allowed_origins(self) -> list[str]:
        return self.allowed_origins

    def match_allowed_origin(self, parsed_origin: ParseResult, pattern: str) -> bool:
        """Compare host (``.domain`` matches subdomains), and scheme/port where given."""
        try:
            origin_host = parsed_origin.hostname
            origin_port = _origin_port(parsed_origin)
            # Patterns from ALLOWED_HOSTS were never validated: a broken one matches nothing.
            parsed_pattern = _parse_pattern(pattern)
            pattern_host = parsed_pattern.hostname
            pattern_port = parsed_pattern.port
            pattern_default_port = _origin_port(parsed_pattern)
        except ValueError:  # a port that is not a number or out of range, a bad "[...]"
            return False
        if not origin_host or not parsed_origin.scheme or not pattern_host:
            return False  # "null", "file://", garbage: never matches a named host
        if not is_same_domain(origin_host, pattern_host):
            return False
        if parsed_pattern.scheme:
            return parsed_pattern.scheme == parsed_origin.scheme and (
                pattern_default_port == origin_port
            )
        return pattern_port is None or pattern_port == origin_port

    def get_origin_port(self, origin: ParseResult) -> int | None:
        """The explicit port, else the scheme's default, else ``None`` (Channels API)."""
        return _origin_port(origin)


def _parse_pattern(pattern: str) -> ParseResult:
    pattern = pattern.lower()
    if "://" in pattern:
        return urlparse(pattern)
    return urlparse("//" + pattern)


def _check_pattern(pattern: object) -> None:
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"expected an origin pattern (a non-empty string), got {pattern!r}")
    if pattern == "*":
        return
    try:
        parsed = _parse_pattern(pattern)
        valid = bool(parsed.hostname) and (parsed.port is None or parsed.port > 0)
    except ValueError:  # "[" (bad IPv6 literal), "host:port-not-a-number", ...
        valid = False
    if not valid:
        raise ValueError(
            "expected an origin pattern like 'example.com', '.example.com', "
            f"'example.com:8000', 'https://example.com:8443' or '*', got {pattern!r}"
        )


class AllowedHostsOriginValidator(OriginValidator):
    """``OriginValidator`` allowing the hosts in ``settings.ALLOWED_HOSTS``.

    Settings are read on every connection (Channels read them once, at import of
    ``asgi.py``), so ``override_settings`` works. With ``DEBUG`` on and ``ALLOWED_HOSTS``
    empty, localhost variants are allowed as Django allows them.
    """

    def __init__(self, application: ASGIApp, *, allow_missing_origin: bool = False) -> None:
        super().__init__(application, [], allow_missing_origin=allow_missing_origin)

    def get_allowed_origins(self) -> list[str]:
        allowed_hosts = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed_hosts:
            allowed_hosts = list(_DEBUG_HOSTS)
        return allowed_hosts
