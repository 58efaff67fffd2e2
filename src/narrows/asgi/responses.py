"""A Django response as ASGI messages: the start message, the body, and ``pathsend``.

The same encoding as Django's ``ASGIHandler.send_response`` (header case kept, cookies as
``Set-Cookie`` headers), with two differences that only change how the bytes travel:

* a non-streaming body goes out as one ``http.response.body`` message, not sliced into
  64 KiB copies: the server writes it with a single write and a ``Content-Length``;
* a ``FileResponse`` of a file on disk goes out as ``http.response.pathsend`` when the
  server offers that extension (the narrows server sends it with ``sendfile``), so the file
  never passes through Python.
"""

from __future__ import annotations

import os
from typing import Any

from django.http import HttpResponseBase

from narrows.types import Headers, Message, Scope

__all__ = ["file_path", "response_headers", "start_message"]

_NAMES: dict[str, bytes] = {}


def response_headers(response: HttpResponseBase) -> Headers:
    """The headers of ``response`` as ASGI pairs, cookies last (as Django sends them)."""
    headers: Headers = []
    names = _NAMES
    for name, value in response.items():
        if isinstance(name, str):
            encoded = names.get(name)
            if encoded is None:
                encoded = name.encode("ascii")
                if len(names) < 512:
                    names[name] = encoded
        else:
            encoded = bytes(name)
        headers.append((encoded, value.encode("latin-1") if isinstance(value, str) else value))
    for cookie in response.cookies.values():
        headers.append((b"Set-Cookie", cookie.output(header="").encode("ascii").strip()))
    return headers


def start_message(response: HttpResponseBase) -> Message:
    return {
        "type": "http.response.start",
        "status": response.status_code,
        "headers": response_headers(response),
    }


def file_path(response: Any, scope: Scope) -> str | None:
    """The absolute path to ``pathsend`` for a ``FileResponse``, or None to stream it.

    Only a regular file read from its start, when the server offers the extension: a
    file object that was partly read, a pipe or an in-memory file is streamed as Django
    streams it.
    """
    extensions = scope.get("extensions")
    if not extensions or "http.response.pathsend" not in extensions:
        return None
    filelike = getattr(response, "file_to_stream", None)
    name = getattr(filelike, "name", None)
    if filelike is None or not isinstance(name, str | bytes):
        return None
    try:
        if filelike.tell() != 0:
            return None
        path = os.path.abspath(os.fsdecode(name))
        if not os.path.isfile(path):
            return None
        if os.path.getsize(path) != int(response.get("Content-Length", -1)):
            return None  # the file changed, or Content-Length was set by hand
    except (OSError, ValueError, AttributeError):
        return None
    return path
