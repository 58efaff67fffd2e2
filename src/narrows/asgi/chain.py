"""The async middleware chain, with runs of ``MiddlewareMixin`` layers in one thread hop each.

Django's ``load_middleware(is_async=True)`` treats every ``MiddlewareMixin`` middleware (all
of Django's own, so all of startproject's) as async: its ``process_request`` and
``process_response`` each go through ``sync_to_async``, one thread hop apiece, and each
``process_view`` is another. An async view behind startproject's seven middleware pays
thirteen hops. Running those middleware on the event loop instead would be wrong: they
are sync code that may block (``SessionMiddleware.process_response`` saves the session to
the database).

:func:`build_async_chain` builds the chain as Django does, middleware by middleware, with one
change: a run of consecutive middleware that use ``MiddlewareMixin``'s own ``__call__`` (the
only thing such a middleware contributes is its ``process_*`` methods) becomes one
:class:`Segment`. A segment makes two hops: one runs every ``process_request`` of the run,
in order (and, when the run sits right above the view, URL resolution and the sync
``process_view`` methods, as :class:`~narrows.asgi.view.ViewStage` prepares them); the other
runs the template-response step and every ``process_response``, in reverse order. Between
the two, the rest of the chain and the async view run on the event loop, holding no
thread. A startproject async view costs two hops instead of thirteen.

What each layer does is unchanged, including ``convert_exception_to_response`` around each
one: an exception from a layer's ``process_request`` becomes that layer's response and skips
its ``process_response``; a short-circuit response from ``process_request`` goes through the
same layer's ``process_response``; ``process_response`` sees the response of the layer below.
``tests/asgi_handler/test_chain.py`` checks, for generated middleware stacks, that the calls
and the response are the ones Django's own chain produces.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.exception import convert_exception_to_response, response_for_exception
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

from narrows.asgi.threads import in_request_thread
from narrows.asgi.view import Prelude, ViewStage

__all__ = ["Reached", "Segment", "build_async_chain", "flattenable"]

logger = logging.getLogger("django.request")

AsyncHandler = Callable[[Any], Awaitable[Any]]


def flattenable(middleware: Any) -> bool:
    """True for a middleware class whose whole behaviour is ``MiddlewareMixin``'s protocol."""
    if not (isinstance(middleware, type) and issubclass(middleware, MiddlewareMixin)):
        return False
    if middleware.__call__ is not MiddlewareMixin.__call__:
        return False
    if middleware.__acall__ is not MiddlewareMixin.__acall__:
        return False
    return not any(
        iscoroutinefunction(getattr(middleware, name, None))
        for name in ("process_request", "process_response")
    )


@dataclass(slots=True)
class Reached:
    """How far the request phase of a segment went."""

    #: index of the layer whose response this is; len(layers) when the request went on
    depth: int
    response: Any
    #: the layer at ``depth`` raised: its own process_response does not run
    raised: bool
    prelude: Prelude | None


class Segment:
    """Consecutive ``MiddlewareMixin`` layers (outermost first) run in two thread hops."""

    def __init__(self, layers: list[Any], inner: AsyncHandler, view: ViewStage | None) -> None:
        self.layers = layers
        self.inner = inner
        #: set when ``inner`` is the view stage itself: its sync parts join this segment's hops
        self.view = view
        self._request_phase = in_request_thread(self.request_phase)
        self._response_phase = in_request_thread(self.response_phase)
        # An async callable to Django (adapt_method_mode, MiddlewareMixin's async_mode).
        markcoroutinefunction(self)

    async def __call__(self, request: Any) -> Any:
        reached: Reached = await self._request_phase(request)
        return await self.finish(request, reached)

    async def finish(
        self, request: Any, reached: Reached, tail: Callable[[Any, Any], Any] | None = None
    ) -> Any:
        """Everything after the request phase; ``tail(request, response)``, if given, runs
        in the response phase's thread after the last ``process_response``."""
        response = reached.response
        postlude = False
        if response is None:  # through every process_request
            if self.view is not None:
                try:
                    response, postlude = await self.view.main(request, reached.prelude)
                except Exception as exc:  # as convert_exception_to_response around the view
                    response = await sync_to_async(response_for_exception, thread_sensitive=False)(
                        request, exc
                    )
            else:
                response = await self.inner(request)
        return await self._response_phase(request, reached, response, postlude, tail)

    def call_sync(self, view_step: Callable[[Any], Any], request: Any) -> Any:
        """The whole segment in the calling thread, as Django's sync chain runs it, with
        ``view_step`` (Django's ``_get_response``) for the view: the sync-view path's chain,
        made of the async chain's own middleware instances."""
        reached = self.request_phase(request, with_view=False)
        response = reached.response
        if response is None:
            response = view_step(request)
        return self.response_phase(request, reached, response, False)

    def request_phase(self, request: Any, with_view: bool = True) -> Reached:
        """In a pool thread: each ``process_request``, outermost first; then, if the
        segment sits right above the view, the view's prelude."""
        for depth, layer in enumerate(self.layers):
            process_request = getattr(layer, "process_request", None)
            if process_request is None:
                continue
            try:
                response = process_request(request)
            except Exception as exc:
                return Reached(depth, response_for_exception(request, exc), True, None)
            if response:
                return Reached(depth, response, False, None)
        depth = len(self.layers)
        if self.view is None or not with_view:
            return Reached(depth, None, False, None)
        try:
            prelude = self.view.prelude(request)
        except Exception as exc:  # URL resolution or a process_view raised
            return Reached(depth, response_for_exception(request, exc), False, None)
        return Reached(depth, None, False, prelude)

    def response_phase(
        self,
        request: Any,
        reached: Reached,
        response: Any,
        postlude: bool,
        tail: Callable[[Any, Any], Any] | None = None,
    ) -> Any:
        """In a pool thread: the view's template step if due, then each ``process_response``,
        innermost first, from the layer whose response this is; then ``tail``."""
        if postlude and self.view is not None:
            try:
                response = self.view.postlude(request, response)
            except Exception as exc:
                response = response_for_exception(request, exc)
        start = reached.depth - 1 if reached.raised else min(reached.depth, len(self.layers) - 1)
        for layer in reversed(self.layers[: start + 1]):
            process_response = getattr(layer, "process_response", None)
            if process_response is None:
                continue
            try:
                response = process_response(request, response)
            except Exception as exc:
                response = response_for_exception(request, exc)
        return response if tail is None else tail(request, response)


def build_async_chain(handler: Any) -> None:
    """``handler.load_middleware(is_async=True)``, with flattened segments (module docstring)."""
    view_middleware: list[Any] = []
    template_middleware: list[Any] = []
    handler._exception_middleware = []
    view = ViewStage(handler, view_middleware, template_middleware)
    handler_fn: Any = convert_exception_to_response(view)
    handler_is_async = True
    run: list[Any] = []  # flattenable layers above ``handler_fn``, innermost first

    def close_run() -> None:
        nonlocal handler_fn, handler_is_async
        if not run:
            return
        inner = handler.adapt_method_mode(True, handler_fn, handler_is_async)
        is_view = handler_fn is not None and getattr(handler_fn, "__wrapped__", None) is view
        handler_fn = Segment(list(reversed(run)), inner, view if is_view else None)
        handler_is_async = True
        run.clear()

    for middleware_path in reversed(settings.MIDDLEWARE):
        middleware = import_string(middleware_path)
        can_sync = getattr(middleware, "sync_capable", True)
        can_async = getattr(middleware, "async_capable", False)
        if not can_sync and not can_async:
            raise RuntimeError(
                f"Middleware {middleware_path} must have at least one of "
                "sync_capable/async_capable set to True."
            )
        flat = flattenable(middleware)
        if flat:
            # Given an async get_response, as in Django's async chain; never called.
            adapted = handler.adapt_method_mode(True, handler_fn, handler_is_async)
            middleware_is_async = True
        else:
            close_run()
            middleware_is_async = can_async if handler_is_async or not can_sync else False
            adapted = handler.adapt_method_mode(
                middleware_is_async,
                handler_fn,
                handler_is_async,
                debug=settings.DEBUG,
                name=f"middleware {middleware_path}",
            )
        try:
            instance = middleware(adapted)
        except MiddlewareNotUsed as exc:
            if settings.DEBUG:
                logger.debug("MiddlewareNotUsed(%r): %s", middleware_path, exc)
            continue
        if instance is None:
            raise ImproperlyConfigured(f"Middleware factory {middleware_path} returned None.")
        if hasattr(instance, "process_view"):
            view_middleware.insert(0, instance.process_view)
        if hasattr(instance, "process_template_response"):
            template_middleware.append(instance.process_template_response)
        if hasattr(instance, "process_exception"):
            # Django's exception middleware stays sync (it runs through one hop).
            handler._exception_middleware.append(
                handler.adapt_method_mode(False, instance.process_exception)
            )
        if flat:
            run.append(instance)
        else:
            handler_fn = convert_exception_to_response(instance)
            handler_is_async = middleware_is_async
    close_run()
    handler._view_middleware = view_middleware
    handler._template_response_middleware = template_middleware
    handler._middleware_chain = handler.adapt_method_mode(True, handler_fn, handler_is_async)
