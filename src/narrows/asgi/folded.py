"""The async path's own first and last hops, folded into the middleware segment's two.

On its async path Django's ``ASGIHandler`` makes a thread hop for ``request_started``
(``Signal.asend`` runs the sync receivers, ``close_old_connections`` among them, through
``sync_to_async``), then the middleware's, then one more for ``response.close()``, which
sends ``request_finished``. When the outermost layer of the async chain is a
:class:`~narrows.asgi.chain.Segment` (startproject's MIDDLEWARE makes one), those two run in
the segment's own hops, in Django's order:

* :func:`front`, the request hop: ``request_started``, ``create_request``, the default
  urlconf (``get_response_async``'s first step), then the segment's ``process_request``
  methods and, when it sits right above the view, URL resolution and ``process_view``;
* :func:`tail`, at the end of the response hop: what ``get_response_async`` and
  ``run_get_response`` do to the response (``request.close`` as a resource closer, the
  ``django.request`` log line for 4xx and 5xx responses, the handler class, a
  ``FileResponse``'s block size) and, for a response that is not streamed, ``close()``:
  its bytes are made, so ``request_finished`` fires just before they are sent, as on the
  sync-view path (:mod:`narrows.asgi.threaded`). A streamed response is closed after it is
  sent, in a hop of its own, as Django does.

A startproject async view with one ORM query makes three hops instead of five.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core import signals
from django.http import FileResponse
from django.urls import set_urlconf
from django.utils.log import log_response

from narrows.asgi.chain import Reached, Segment
from narrows.types import Scope

__all__ = ["Front", "front", "tail"]


@dataclass(slots=True)
class Front:
    """What the request hop made: the request, or the error response that replaces it."""

    request: Any
    error_response: Any
    reached: Reached | None


def front(handler: Any, segment: Segment, scope: Scope, body_file: IO[bytes]) -> Front:
    """In a pool thread: the request's start, up to the view (see the module docstring)."""
    signals.request_started.send(sender=handler.__class__, scope=scope)
    request, error_response = handler.create_request(scope, body_file)
    if request is None:
        return Front(None, error_response, None)
    set_urlconf(settings.ROOT_URLCONF)
    return Front(request, None, segment.request_phase(request))


def tail(handler: Any, request: Any, response: Any) -> Any:
    """In the response hop's thread: the end of ``get_response_async`` and
    ``run_get_response``, then ``close()`` unless the response is streamed."""
    response._resource_closers.append(request.close)
    if response.status_code >= 400:
        log_response(
            "%s: %s", response.reason_phrase, request.path, response=response, request=request
        )
    response._handler_class = handler.__class__
    if isinstance(response, FileResponse):
        response.block_size = handler.chunk_size
    if not response.streaming:
        response.close()
    return response
