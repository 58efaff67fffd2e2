"""A request for a sync view, served the way a WSGI server serves it: in one pool thread.

Everything sync happens in a single call on one pool thread: ``request_started`` (whose
receiver ``close_old_connections`` checks that thread's connections), building the request,
Django's own sync middleware chain and view (``ATOMIC_REQUESTS`` included), rendering,
iterating a sync streaming response, ``response.close()`` and so ``request_finished``.
What the thread needs from the event loop (more request body, sending a streamed chunk)
goes through the :class:`~narrows.asgi.bridge.LoopBridge`.

The chain is Django's: ``BaseHandler.load_middleware(is_async=False)``, as ``WSGIHandler``
builds it, held by a :class:`SyncChain` beside the handler's own async chain.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from django.core import signals
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

from narrows.asgi.bridge import LoopBridge
from narrows.asgi.chain import Segment
from narrows.asgi.request import get_script_prefix
from narrows.asgi.responses import file_path, start_message
from narrows.types import Message, Scope

if TYPE_CHECKING:
    from narrows.asgi.handler import ASGIHandler

__all__ = ["Outcome", "SyncChain", "respond_in_thread"]


class SyncChain(BaseHandler):
    """Django's sync middleware chain and view machinery, as ``WSGIHandler`` has them.

    When the handler's async chain is one :class:`~narrows.asgi.chain.Segment` right above
    the view (every middleware is a plain ``MiddlewareMixin``, as startproject's are), the
    sync chain is that segment run in one thread around Django's own ``_get_response``:
    each middleware class is instantiated once, and the sync and async paths share its
    instance (and any state it keeps). Otherwise Django's sync chain is built beside it.
    """

    def __init__(self, handler: ASGIHandler | None = None) -> None:
        super().__init__()
        segment = getattr(handler, "_middleware_chain", None)
        if handler is None or not isinstance(segment, Segment) or segment.view is None:
            self.load_middleware(is_async=False)
            return
        self._view_middleware = handler._view_middleware  # type: ignore[attr-defined]
        self._template_response_middleware = handler._template_response_middleware  # type: ignore[attr-defined]
        self._exception_middleware = handler._exception_middleware  # type: ignore[attr-defined]
        view_step = convert_exception_to_response(self._get_response)  # type: ignore[attr-defined]
        self._middleware_chain = functools.partial(segment.call_sync, view_step)


@dataclass(slots=True)
class Outcome:
    """What the event loop still has to do once the thread is done."""

    #: messages to send, in order (empty when the thread sent everything itself)
    messages: list[Message] = field(default_factory=list)
    #: a response whose async iterator the loop must stream
    stream: Any = None
    #: a response to close after sending (``pathsend`` and async streams)
    close: HttpResponseBase | None = None


def respond_in_thread(
    handler: ASGIHandler, chain: SyncChain, scope: Scope, body: IO[bytes], bridge: LoopBridge
) -> Outcome:
    """The whole sync part of one request; runs in a pool thread."""
    set_script_prefix(get_script_prefix(scope))
    signals.request_started.send(sender=handler.__class__, scope=scope)
    request, response = handler.create_request(scope, body)
    if request is None:
        body.close()
    else:
        response = chain.get_response(request)
        response._handler_class = handler.__class__  # type: ignore[attr-defined]
        if isinstance(response, FileResponse):
            response.block_size = handler.chunk_size
    return deliver(response, scope, bridge)


def deliver(response: Any, scope: Scope, bridge: LoopBridge) -> Outcome:
    """Turn ``response`` into messages; stream a sync iterator through ``bridge`` here."""
    start = start_message(response)
    if not response.streaming:
        content = response.content
        # Closed here, in the thread that ran the view: request_finished and its
        # close_old_connections see this thread's connections. The bytes are already made.
        response.close()
        return Outcome([start, {"type": "http.response.body", "body": content}])
    path = file_path(response, scope)
    if path is not None:
        # Closed after sending: a NamedTemporaryFile disappears with its file object.
        return Outcome([start, {"type": "http.response.pathsend", "path": path}], close=response)
    if response.is_async:
        return Outcome([start], stream=response, close=response)
    try:
        stream_sync(response, start, bridge)
    finally:
        response.close()
    return Outcome()


def stream_sync(response: Any, start: Message, bridge: LoopBridge) -> None:
    """Send a sync streaming response chunk by chunk, each send waiting for the last."""
    if not bridge.send(start):
        return
    for part in response:
        chunk = {"type": "http.response.body", "body": part, "more_body": True}
        if part and not bridge.send(chunk):
            return  # the client left: stop iterating, as a WSGI server does
    bridge.send({"type": "http.response.body", "body": b"", "more_body": False})
