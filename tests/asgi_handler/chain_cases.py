"""Middleware and views made to order for test_chain.py, importable by dotted path.

:func:`middleware_class` makes a middleware class with the given behaviour and registers it
as an attribute of this module (``settings.MIDDLEWARE`` needs import paths). Every call
appends to :data:`EVENTS`, so two chains given the same stack can be compared call by call.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpResponse
from django.template.response import SimpleTemplateResponse
from django.urls import path
from django.utils import translation
from django.utils.deprecation import MiddlewareMixin

EVENTS: list[str] = []
_lock = threading.Lock()
VIEW = {"kind": "async"}
_made: dict[str, str] = {}


def log(event: str) -> None:
    with _lock:
        EVENTS.append(event)


class Boom(Exception):
    pass


def _response(text: str) -> HttpResponse:
    return HttpResponse(text)


def middleware_class(kind: str, request: str, response: str, view: str, exception: str) -> str:
    """Import path of a middleware: ``kind`` mixin | mixin-sync | function-async | function-sync;
    the behaviours: ``absent`` or none/short/raise (request, view), pass/replace/raise
    (response), none/handle (exception)."""
    key = "_".join(("mw", kind, request, response, view, exception)).replace("-", "")
    if key in _made:
        return _made[key]
    name = key

    def process_request(self: Any, req: Any) -> Any:
        log(f"{name}.process_request")
        if request == "short":
            return _response(f"short from {name}")
        if request == "raise":
            raise Boom(name)
        return None

    def process_response(self: Any, req: Any, resp: Any) -> Any:
        log(f"{name}.process_response {resp.status_code} {resp.content[:40]!r}")
        if response == "replace":
            return _response(f"replaced by {name}")
        if response == "raise":
            raise Boom(name)
        return resp

    def process_view(self: Any, req: Any, callback: Any, args: Any, kwargs: Any) -> Any:
        log(f"{name}.process_view")
        if view == "short":
            return _response(f"view short from {name}")
        if view == "raise":
            raise Boom(name)
        return None

    def process_exception(self: Any, req: Any, exc: Exception) -> Any:
        log(f"{name}.process_exception {exc!r}")
        return _response(f"handled by {name}") if exception == "handle" else None

    methods: dict[str, Callable[..., Any]] = {}
    if request != "absent":
        methods["process_request"] = process_request
    if response != "absent":
        methods["process_response"] = process_response
    if view != "absent":
        methods["process_view"] = process_view
    if exception != "absent":
        methods["process_exception"] = process_exception

    if kind.startswith("mixin"):
        attrs: dict[str, Any] = dict(methods)
        if kind == "mixin-sync":
            attrs["async_capable"] = False
        cls: Any = type(name, (MiddlewareMixin,), attrs)
    else:
        cls = _function_middleware(name, kind == "function-async", methods)
    globals()[name] = cls
    _made[key] = f"{__name__}.{name}"
    return _made[key]


def _function_middleware(name: str, is_async: bool, methods: dict[str, Callable[..., Any]]) -> Any:
    """A middleware with its own __call__ (never flattened), sync-only or async-only."""

    class Own:
        sync_capable = not is_async
        async_capable = is_async

        def __init__(self, get_response: Any) -> None:
            self.get_response = get_response
            if is_async:
                markcoroutinefunction(self)

        def __call__(self, req: Any) -> Any:
            if iscoroutinefunction(self):
                return self._acall(req)
            log(f"{name}.call in")
            result = self.get_response(req)
            log(f"{name}.call out {result.status_code}")
            return result

        async def _acall(self, req: Any) -> Any:
            log(f"{name}.acall in")
            result = await self.get_response(req)
            log(f"{name}.acall out {result.status_code}")
            return result

    for method_name, method in methods.items():
        if method_name in ("process_view", "process_exception"):
            setattr(Own, method_name, method)
    Own.__name__ = Own.__qualname__ = name
    return Own


async def async_view(request: Any) -> Any:
    log("view")
    kind = VIEW["kind"]
    if kind == "async-raise":
        raise Boom("view")
    if kind == "async-template":
        return SimpleTemplateResponse(_template(), {"who": "template"})
    return HttpResponse("from the view")


def sync_view(request: Any) -> Any:
    log("sync view")
    if VIEW["kind"] == "sync-raise":
        raise Boom("sync view")
    return HttpResponse("from the sync view")


def _template() -> Any:
    from django.template import engines

    return engines["django"].from_string("hello {{ who }}")


MARK: contextvars.ContextVar[str] = contextvars.ContextVar("chain_cases_mark", default="unset")


class SetsContext(MiddlewareMixin):
    """Sets a ContextVar, an asgiref Local (the active language) and the urlconf in
    process_request; the view and process_response must see them."""

    def process_request(self, request: Any) -> None:
        MARK.set("set in process_request")
        translation.activate("fr")

    def process_response(self, request: Any, response: Any) -> Any:
        log(f"response sees {MARK.get()} {translation.get_language()}")
        return response


async def context_view(request: Any) -> Any:
    log(f"view sees {MARK.get()} {translation.get_language()}")
    return HttpResponse(MARK.get())


def sync_context_view(request: Any) -> Any:
    log(f"sync view sees {MARK.get()} {translation.get_language()}")
    return HttpResponse(MARK.get())


urlpatterns = [
    path("a/", async_view),
    path("s/", sync_view),
    path("ctx/", context_view),
    path("sctx/", sync_context_view),
]
