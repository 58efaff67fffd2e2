"""``BaseHandler._get_response_async`` in three parts, so that its sync steps share hops.

Django resolves the URL and calls the view middleware, the view, the template-response
middleware and ``render()``, hopping to a thread for each sync one. :class:`ViewStage` does
the same steps in the same order, split where sync code meets the event loop:

* :meth:`ViewStage.prelude` (sync): URL resolution and the leading sync ``process_view``
  methods;
* :meth:`ViewStage.main` (async, on the loop): any remaining ``process_view``, the view
  (awaited if async; one hop if sync), ``check_response``;
* :meth:`ViewStage.postlude` (sync): ``process_template_response`` methods and ``render()``,
  for a ``TemplateResponse`` whose steps are all sync.

Under a :class:`~narrows.asgi.chain.Segment` the prelude and postlude run inside the
segment's own two hops; alone (a non-``MiddlewareMixin`` middleware right above the view)
the stage is its own async callable, as ``_get_response_async`` is. Exceptions propagate
from each part, and whoever called it converts them as Django's
``convert_exception_to_response`` around ``_get_response_async`` does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async

from narrows.asgi.threads import in_request_thread

__all__ = ["Prelude", "ViewStage"]


@dataclass(slots=True)
class Prelude:
    callback: Any
    args: Any
    kwargs: Any
    #: the response a ``process_view`` returned, if one did
    response: Any = None
    #: the first ``process_view`` not run yet (an async one: it runs on the loop)
    next_view_middleware: int = 0


class ViewStage:
    def __init__(self, handler: Any, view_middleware: list[Any], template_middleware: list[Any]):
        self.handler = handler
        #: raw ``process_view`` / ``process_template_response`` methods, filled by the chain
        self.view_middleware = view_middleware
        self.template_middleware = template_middleware
        self._prelude_in_thread = in_request_thread(self.prelude)
        self._postlude_in_thread = in_request_thread(self.postlude)
        # An async callable to Django (convert_exception_to_response, MiddlewareMixin).
        markcoroutinefunction(self)

    async def __call__(self, request: Any) -> Any:
        """The whole stage as one async callable (``_get_response_async``)."""
        if self.view_middleware and not iscoroutinefunction(self.view_middleware[0]):
            prelude = await self._prelude_in_thread(request)
        else:
            prelude = self.prelude(request)  # URL resolution only: on the loop, as Django
        response, postlude = await self.main(request, prelude)
        if postlude:
            response = await self._postlude_in_thread(request, response)
        return response

    def prelude(self, request: Any) -> Prelude:
        callback, args, kwargs = self.handler.resolve_request(request)
        prelude = Prelude(callback, args, kwargs)
        for index, method in enumerate(self.view_middleware):
            if iscoroutinefunction(method):
                prelude.next_view_middleware = index
                return prelude
            response = method(request, callback, args, kwargs)
            if response:
                prelude.response = response
                break
        prelude.next_view_middleware = len(self.view_middleware)
        return prelude

    async def main(self, request: Any, prelude: Prelude | None) -> tuple[Any, bool]:
        """The view; returns the response and whether :meth:`postlude` is still due."""
        assert prelude is not None  # a segment passes the prelude its request phase made
        handler = self.handler
        callback, args, kwargs = prelude.callback, prelude.args, prelude.kwargs
        response = prelude.response
        if response is None:
            for method in self.view_middleware[prelude.next_view_middleware :]:
                if iscoroutinefunction(method):
                    response = await method(request, callback, args, kwargs)
                else:
                    response = await sync_to_async(method)(request, callback, args, kwargs)
                if response:
                    break
        if response is None:
            wrapped_callback = handler.make_view_atomic(callback)
            if not iscoroutinefunction(wrapped_callback):
                wrapped_callback = sync_to_async(wrapped_callback, thread_sensitive=True)
            try:
                response = await wrapped_callback(request, *args, **kwargs)
            except Exception as exc:
                response = await sync_to_async(handler.process_exception_by_middleware)(
                    exc, request
                )
                if response is None:
                    raise
        handler.check_response(response, callback)
        if hasattr(response, "render") and callable(response.render):
            if not iscoroutinefunction(response.render) and not any(
                iscoroutinefunction(method) for method in self.template_middleware
            ):
                return response, True
            response = await self._render_on_loop(request, response)
        if asyncio.iscoroutine(response):
            raise RuntimeError("Response is still a coroutine.")
        return response, False

    def postlude(self, request: Any, response: Any) -> Any:
        handler = self.handler
        for method in self.template_middleware:
            response = method(request, response)
            handler.check_response(
                response,
                method,
                name=f"{method.__self__.__class__.__name__}.process_template_response",
            )
        try:
            return response.render()
        except Exception as exc:
            response = handler.process_exception_by_middleware(exc, request)
            if response is None:
                raise
            return response

    async def _render_on_loop(self, request: Any, response: Any) -> Any:
        """Django's own steps when some are async: each sync one in a hop of its own."""
        handler = self.handler
        for method in self.template_middleware:
            if iscoroutinefunction(method):
                response = await method(request, response)
            else:
                response = await sync_to_async(method)(request, response)
            handler.check_response(
                response,
                method,
                name=f"{method.__self__.__class__.__name__}.process_template_response",
            )
        try:
            if iscoroutinefunction(response.render):
                return await response.render()
            return await sync_to_async(response.render, thread_sensitive=True)()
        except Exception as exc:
            response = await sync_to_async(handler.process_exception_by_middleware)(exc, request)
            if response is None:
                raise
            return response
