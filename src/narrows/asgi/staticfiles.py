"""``ASGIStaticFilesHandler`` on narrows' handler: what ``runserver`` and the demo serve.

A drop-in for ``django.contrib.staticfiles.handlers.ASGIStaticFilesHandler``: requests under
``STATIC_URL`` are answered from the staticfiles finders, everything else goes to the
wrapped application. Django's version reads every file whole into memory (it turns the
``FileResponse`` into a list of chunks made in a thread); this one keeps the
``FileResponse``, which narrows sends with ``http.response.pathsend`` (``sendfile``), or
streams from a pool thread on servers without that extension.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from django.contrib.staticfiles.handlers import StaticFilesHandlerMixin
from django.http import HttpResponseBase

from narrows.asgi.handler import ASGIHandler
from narrows.types import Scope, Send

__all__ = ["ASGIStaticFilesHandler"]


class ASGIStaticFilesHandler(StaticFilesHandlerMixin, ASGIHandler):  # type: ignore[misc]
    """ASGI application that serves static files and hands everything else on."""

    def __init__(self, application: Any) -> None:
        # As Django's: no middleware of its own (``load_middleware`` is a no-op here).
        self.application = application
        self.base_url = urlparse(self.get_base_url())

    async def __call__(self, scope: Scope, receive: Any, send: Send) -> None:
        if scope["type"] == "http" and self._should_handle(scope["path"]):
            await ASGIHandler.__call__(self, scope, receive, send)
            return
        await self.application(scope, receive, send)  # type: ignore[operator]

    async def get_response_async(self, request: Any) -> HttpResponseBase:
        response: HttpResponseBase = await super().get_response_async(request)
        response._resource_closers.append(request.close)  # type: ignore[attr-defined]
        return response
