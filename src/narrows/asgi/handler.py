"""``ASGIHandler``: Django's ASGI handler, running sync views the way WSGI servers run them.

A drop-in subclass of ``django.core.handlers.asgi.ASGIHandler``. Per request it picks one
of two paths (:mod:`narrows.asgi.dispatch`):

* **sync view** (most Django views): the whole sync part of the request runs as one call
  in the process's bounded thread pool (:mod:`narrows.asgi.threaded`), with Django's own
  sync middleware chain, as ``WSGIHandler`` runs it. One thread hop per request instead of
  Django's one per middleware method, and no thread created per request.
* **async view**: Django 5's async path (listening for ``http.disconnect``, which cancels
  the view), with the request's thread-sensitive calls sent to the same pool
  (:mod:`narrows.asgi.threads`) instead of a new thread per request.

Both send ``FileResponse`` files with ``http.response.pathsend`` when the server offers it,
stream sync iterators from a pool thread instead of loading them whole, and read request
bodies as :mod:`narrows.asgi.body` says. A subclass that overrides how responses are made
or sent (``get_response_async``, ``send_response``, ``resolve_request``...) is served on the
async path, where its override is called as Django calls it.
"""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import asgi as django_asgi
from django.core.handlers.base import BaseHandler
from django.dispatch import Signal
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

from narrows.asgi.body import spooled_body, streamed_body
from narrows.asgi.bridge import LoopBridge
from narrows.asgi.chain import Segment, build_async_chain
from narrows.asgi.dispatch import view_is_async
from narrows.asgi.folded import front, tail
from narrows.asgi.pool import get_pool, run_in_pool
from narrows.asgi.request import ASGIRequest, get_script_prefix, path_info_of
from narrows.asgi.responses import file_path, start_message
from narrows.asgi.threaded import Outcome, SyncChain, respond_in_thread, stream_sync
from narrows.asgi.threads import RequestThreads, in_request_thread
from narrows.types import Message, Receive, Scope, Send

__all__ = ["ASGIHandler"]

#: Methods the thread path does not call: a subclass overriding one is served on the
#: async path, which calls them.
_THREAD_PATH_SKIPS = (
    "get_response",
    "get_response_async",
    "run_get_response",
    "send_response",
    "resolve_request",
    "make_view_atomic",
    "check_response",
    "process_exception_by_middleware",
    "adapt_method_mode",
    "load_middleware",
    "_get_response",
    "_get_response_async",
)


async def send_signal(signal: Signal, **kwargs: Any) -> None:
    """``signal.asend(...)`` on Django 5; its sync receivers through a thread on 4.2."""
    asend = getattr(signal, "asend", None)
    if asend is not None:
        await asend(**kwargs)
    else:
        await sync_to_async(signal.send)(**kwargs)


class ASGIHandler(django_asgi.ASGIHandler):
    """Handler for ASGI requests; see the module docstring."""

    request_class = ASGIRequest

    #: Django's sync chain for the thread path, made on first use: subclasses such as
    #: staticfiles' handler never call ``__init__`` and never take the thread path.
    _sync_chain: SyncChain | None = None

    def __init__(self) -> None:
        super().__init__()  # Django's async middleware chain, for async views
        get_pool()  # sized now, from settings that are loaded by now

    def load_middleware(self, is_async: bool = False) -> None:
        """Django's, except that the async chain runs ``MiddlewareMixin`` layers in two thread
        hops per run instead of two per middleware (:mod:`narrows.asgi.chain`)."""
        own_view_step = getattr(type(self), "_get_response_async", None) is getattr(
            BaseHandler, "_get_response_async", None
        )
        if is_async and own_view_step:
            build_async_chain(self)
        else:
            super().load_middleware(is_async)

    async def __call__(self, scope: Scope, receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(
                "Django can only handle ASGI/HTTP connections, not {}.".format(scope["type"])
            )
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        cls = type(self)
        if cls.read_body is not django_asgi.ASGIHandler.read_body:
            try:
                body_file = await self.read_body(receive)
            except RequestAborted:
                return
            await self._handle_async(scope, receive, send, body_file)
            return
        first = await receive()
        if first["type"] == "http.disconnect":
            return  # the client left before the request was complete
        if _thread_path_allowed(cls) and not self._view_is_async(scope):
            await self._handle_in_thread(scope, receive, send, first)
            return
        if first.get("more_body", False):
            try:
                body_file = await spooled_body(receive, first, get_pool())
            except RequestAborted:
                return
        else:
            body_file = io.BytesIO(first.get("body", b""))
        await self._handle_async(scope, receive, send, body_file)

    def _view_is_async(self, scope: Scope) -> bool:
        path_info = path_info_of(scope["path"], get_script_prefix(scope))
        return view_is_async(getattr(self.request_class, "urlconf", None), path_info)

    # -- sync views: one pool thread ----------------------------------------------------------

    async def _handle_in_thread(
        self, scope: Scope, receive: Receive, send: Send, first: Message
    ) -> None:
        bridge = LoopBridge(asyncio.get_running_loop(), receive, send)
        body: IO[bytes]
        if first.get("more_body", False):
            body = streamed_body(bridge, first.get("body", b""))
        else:
            body = io.BytesIO(first.get("body", b""))
            bridge.listen()
        chain = self._sync_chain
        if chain is None:
            chain = self._sync_chain = SyncChain(self)
        try:
            outcome: Outcome = await run_in_pool(
                get_pool(), respond_in_thread, self, chain, scope, body, bridge
            )
        except BaseException:
            bridge.finish()
            body.close()
            raise
        try:
            if bridge.error is not None:
                raise bridge.error
            for message in outcome.messages:
                if bridge.closed:
                    break
                await send(message)
            if outcome.stream is not None and not bridge.closed:
                # An async iterator's thread-sensitive calls go to the pool, as on the
                # async path (the sync part of the request needed no such context).
                async with RequestThreads(get_pool()):
                    await self._stream_async(outcome.stream, send, bridge)
        finally:
            bridge.finish()
            body.close()
            if outcome.close is not None:
                await run_in_pool(get_pool(), _close, outcome.close)

    async def _stream_async(self, response: Any, send: Send, bridge: LoopBridge) -> None:
        async with aclosing(aiter(response)) as content:
            async for part in content:
                if bridge.closed:
                    return
                await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    # -- async views: Django 5's async path ---------------------------------------------------

    async def _handle_async(
        self, scope: Scope, receive: Receive, send: Send, body_file: IO[bytes]
    ) -> None:
        """Django 5.2's ``ASGIHandler.handle`` after the body is read (on Django 4.2 too),
        with the request's thread-sensitive calls sent to the pool, serially."""
        async with RequestThreads(get_pool()):
            await self._respond_async(scope, receive, send, body_file)

    async def _respond_async(
        self, scope: Scope, receive: Receive, send: Send, body_file: IO[bytes]
    ) -> None:
        set_script_prefix(get_script_prefix(scope))
        segment = self._folded_segment()
        get_response: Callable[[Any], Awaitable[HttpResponseBase]]
        if segment is None:
            await send_signal(signals.request_started, sender=self.__class__, scope=scope)
            request, error_response = self.create_request(scope, body_file)
            get_response = self.run_get_response
        else:  # request_started and close() in the middleware's hops (narrows.asgi.folded)
            started = await _front_in_thread(self, segment, scope, body_file)
            request, error_response = started.request, started.error_response
            if started.reached is not None:  # None with an error response
                get_response = functools.partial(
                    segment.finish, reached=started.reached, tail=self._tail
                )

        if error_response is not None:
            body_file.close()
            await self._send(error_response, send, scope)
            await sync_to_async(error_response.close)()
            return

        async def process_request(request: Any, send: Send) -> HttpResponseBase:
            response = await get_response(request)
            try:
                await self._send(response, send, scope)
            except asyncio.CancelledError:
                pass  # the client disconnected while the response was being sent
            return response

        # The listener goes first: it must not raise unexpected errors that would keep
        # process_request from being cancelled.
        tasks: list[asyncio.Task[Any]] = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass  # the client disconnected
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()  # the view may handle the cancellation
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await send_signal(signals.request_finished, sender=self.__class__)
        else:
            if segment is None or not response.closed:
                await _close_in_request_thread(response)
        body_file.close()

    def _folded_segment(self) -> Segment | None:
        """The chain's outermost segment, if this request's first and last hops may run in
        its own (:mod:`narrows.asgi.folded`): Django's ``get_response_async`` and
        ``run_get_response`` are the ones in use."""
        chain = getattr(self, "_middleware_chain", None)
        if not isinstance(chain, Segment) or not _fold_allowed(type(self)):
            return None
        return chain

    def _tail(self, request: Any, response: Any) -> Any:
        return tail(self, request, response)

    async def listen_for_disconnect(self, receive: Any) -> None:
        """Wait for ``http.disconnect`` (raised as ``RequestAborted``)."""
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestAborted()
        raise AssertionError("Invalid ASGI message after request body: {}".format(message["type"]))

    async def run_get_response(self, request: Any) -> HttpResponseBase:
        response: Any = await self.get_response_async(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        return response  # type: ignore[no-any-return]

    async def _send(self, response: Any, send: Send, scope: Scope) -> None:
        if type(self).send_response is not ASGIHandler.send_response:
            await self.send_response(response, send)  # a subclass's own way
        else:
            await self.send_response_for(response, send, scope)

    async def send_response(self, response: Any, send: Send) -> None:
        """Encode and send a response (Django's signature: no scope, so no ``pathsend``)."""
        await self.send_response_for(response, send, {})

    async def send_response_for(self, response: Any, send: Send, scope: Scope) -> None:
        """Send ``response``: one body message, ``pathsend`` for files on disk, sync
        iterators streamed from a pool thread (Django loads them whole into memory)."""
        start = start_message(response)
        if not response.streaming:
            await send(start)
            await send({"type": "http.response.body", "body": response.content})
            return
        path = file_path(response, scope)
        if path is not None:
            await send(start)
            await send({"type": "http.response.pathsend", "path": path})
            return
        if response.is_async:
            await send(start)
            bridge = LoopBridge(asyncio.get_running_loop(), _no_receive, send)
            await self._stream_async(response, send, bridge)
            return
        bridge = LoopBridge(asyncio.get_running_loop(), _no_receive, send)
        try:
            await sync_to_async(stream_sync)(response, start, bridge)
        finally:
            bridge.close()  # cancelled (client gone): the thread stops at its next chunk


async def _no_receive() -> Message:
    raise RuntimeError("a response stream does not receive")


def _close(response: HttpResponseBase) -> None:
    response.close()


_thread_path_classes: dict[type, bool] = {}
_fold_classes: dict[type, bool] = {}
_front_in_thread = in_request_thread(front)
_close_in_request_thread = in_request_thread(_close)


def _fold_allowed(cls: type) -> bool:
    allowed = _fold_classes.get(cls)
    if allowed is None:
        allowed = _fold_classes[cls] = all(
            getattr(cls, name, None) is getattr(ASGIHandler, name, None)
            for name in ("get_response_async", "run_get_response", "_get_response_async")
        )
    return allowed


def _thread_path_allowed(cls: type) -> bool:
    """True if ``cls`` keeps every method the thread path relies on as narrows has it."""
    allowed = _thread_path_classes.get(cls)
    if allowed is None:
        allowed = _thread_path_classes[cls] = all(
            getattr(cls, name, None) is getattr(ASGIHandler, name, None)
            for name in _THREAD_PATH_SKIPS
        )
    return allowed
