"""Routers: by protocol type, by URL path (Django ``path()``/``re_path()``), by channel name.

Every router is itself an ASGI application, so they nest: the usual ``asgi.py`` is a
``ProtocolTypeRouter`` whose ``"websocket"`` entry is middleware around a ``URLRouter``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, cast

from asgiref.compatibility import guarantee_single_callable
from django.core.exceptions import ImproperlyConfigured
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RoutePattern, URLPattern, URLResolver

from narrows.types import ASGIApp, Receive, Scope, Send

__all__ = ["ChannelNameRouter", "ProtocolTypeRouter", "URLRouter", "get_default_application"]


def _single(app: Any) -> ASGIApp:
    """The app as an ASGI 3 single callable (ASGI 2 double callables are wrapped)."""
    return cast(ASGIApp, guarantee_single_callable(app))  # type: ignore[no-untyped-call]


def _strip_root_path(path: str, root_path: str) -> str:
    """``path`` without ``root_path`` (ASGI puts the mount point in both)."""
    if not root_path:
        return path
    prefix = root_path.rstrip("/")
    if path == prefix or path.startswith(prefix + "/"):
        return path[len(prefix) :]
    # A path outside the mount point matches nothing (as in Channels).
    raise ValueError(f"No route found for path {path!r}: it is outside root_path {root_path!r}.")


def get_default_application() -> Any:
    """The application named by ``settings.ASGI_APPLICATION`` (``"module.path.attr"``)."""
    from django.conf import settings

    setting = getattr(settings, "ASGI_APPLICATION", None)
    if not isinstance(setting, str) or "." not in setting:
        raise ImproperlyConfigured(
            f'Cannot find ASGI_APPLICATION setting: expected "module.path.attribute", '
            f"got {setting!r}"
        )
    path, name = setting.rsplit(".", 1)
    try:
        module = importlib.import_module(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"Cannot import ASGI_APPLICATION module {path!r}: {exc}"
        ) from exc
    try:
        return getattr(module, name)
    except AttributeError as exc:
        raise ImproperlyConfigured(
            f"Cannot find {name!r} in ASGI_APPLICATION module {path}"
        ) from exc


class ProtocolTypeRouter:
    """Dispatch on ``scope["type"]``: ``{"http": ..., "websocket": ..., "lifespan": ...}``.

    A ``"lifespan"`` entry is allowed (Channels rejects it); without one, lifespan scopes
    are refused with a ValueError, which servers treat as "lifespan not supported".
    """

    def __init__(self, application_mapping: Mapping[str, Any]) -> None:
        if not isinstance(application_mapping, Mapping):
            raise TypeError(
                "ProtocolTypeRouter expected a mapping of scope type to application, got "
                f"{type(application_mapping).__name__}"
            )
        self.application_mapping = dict(application_mapping)
        self._apps: dict[str, ASGIApp] = {
            kind: _single(app) for kind, app in self.application_mapping.items()
        }

    # Routers return what the application returns (Channels does; tests rely on it).
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        kind = scope["type"]
        try:
            application = self._apps[kind]
        except KeyError:
            known = ", ".join(repr(k) for k in self._apps) or "none"
            raise ValueError(
                f"No application configured for scope type {kind!r} (configured: {known})"
            ) from None
        return await application(scope, receive, send)


def _is_router(app: object) -> bool:
    return getattr(app, "_path_routing", False) is True


def _make_prefix_pattern(route: URLPattern) -> None:
    """Let ``route`` match a prefix: a nested router routes the rest of the path.

    Django 5 compiles a ``path()`` pattern's regex (anchored for endpoints) when it is
    built, so flipping ``_is_endpoint`` afterwards, as Channels does, is not enough.
    """
    pattern = route.pattern
    if isinstance(pattern, RoutePattern):
        route.pattern = RoutePattern(
            pattern._route,  # type: ignore[attr-defined]
            name=pattern.name,
            is_endpoint=False,
        )
    else:
        pattern._is_endpoint = False  # type: ignore[union-attr]


class URLRouter:
    """Route on the URL path with Django's ``path()``/``re_path()`` entries.

    Captured arguments land in ``scope["url_route"]`` (``{"args": ..., "kwargs": ...}``),
    merged with any from enclosing routers; an entry whose application is another
    ``URLRouter`` matches a prefix and passes the rest on as ``scope["path_remaining"]``.
    The outermost router strips ``scope["root_path"]`` from the path first. ``include()``
    is refused: nest ``URLRouter`` instances instead.
    """

    #: Lets an enclosing URLRouter treat this router's route as a prefix, not an endpoint.
    _path_routing = True

    def __init__(self, routes: Sequence[URLPattern | URLResolver]) -> None:
        self.routes = list(routes)
        self._apps: list[ASGIApp] = []
        self._patterns: list[URLPattern] = []
        for route in self.routes:
            if isinstance(route, URLResolver):
                raise ImproperlyConfigured(
                    f"{route}: include() is not supported in URLRouter. Use nested URLRouter "
                    "instances instead."
                )
            if not isinstance(route, URLPattern):
                raise ImproperlyConfigured(
                    f"URLRouter expected path() or re_path() entries, got {route!r}"
                )
            if _is_router(route.callback):
                _make_prefix_pattern(route)
            self._patterns.append(route)
            self._apps.append(_single(route.callback))

    # Returns Any (not None) so django-stubs accepts a nested router in path()/re_path().
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        outermost = "path_remaining" not in scope
        path = scope.get("path_remaining", scope.get("path"))
        if path is None:
            raise ValueError("No 'path' key in connection scope, cannot route URLs")
        if outermost:
            path = _strip_root_path(path, scope.get("root_path") or "")
        # Django's resolver matches without the leading slash.
        relative = path.lstrip("/")
        for route, application in zip(self._patterns, self._apps, strict=True):
            try:
                match = route.pattern.match(relative)
            except Resolver404:
                continue
            if not match:
                continue
            new_path, args, kwargs = match
            kwargs = {**kwargs, **route.default_args}
            outer = scope.get("url_route", {})
            inner_scope = {
                **scope,
                "path_remaining": new_path,
                "url_route": {
                    "args": tuple(outer.get("args", ())) + tuple(args),
                    "kwargs": {**outer.get("kwargs", {}), **kwargs},
                },
            }
            if not _is_router(route.callback):
                return await application(inner_scope, receive, send)
            try:
                return await application(inner_scope, receive, send)
            except Resolver404:
                continue  # the nested router had no match: try our next route
        if not outermost:
            # Let the enclosing router try its next route, as Django's resolvers do.
            raise Resolver404({"path": relative, "tried": []})
        raise ValueError(f"No route found for path {path!r}.")


class ChannelNameRouter:
    """Dispatch ``channel`` scopes (from ``runworker``) on ``scope["channel"]``."""

    def __init__(self, application_mapping: Mapping[str, Any]) -> None:
        self.application_mapping = dict(application_mapping)
        self._apps: dict[str, ASGIApp] = {
            name: _single(app) for name, app in self.application_mapping.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if "channel" not in scope:
            raise ValueError(
                "ChannelNameRouter got a scope without a 'channel' key: expected a 'channel' "
                f"scope from a worker, got a {scope.get('type')!r} scope"
            )
        try:
            application = self._apps[scope["channel"]]
        except KeyError:
            known = ", ".join(repr(k) for k in self._apps) or "none"
            raise ValueError(
                f"No application configured for channel name {scope['channel']!r} "
                f"(configured: {known})"
            ) from None
        return await application(scope, receive, send)
