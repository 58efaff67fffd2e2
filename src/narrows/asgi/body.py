"""Request bodies for Django: what the first ``http.request`` message says decides the form.

* The whole body came in the first message (nearly every request): a ``BytesIO``, with no
  copy and no wait.
* More is coming, and a sync view will read it in a pool thread: :func:`streamed_body`, a
  file whose reads pull the next message through the :class:`~narrows.asgi.bridge.LoopBridge`
  as Django asks for it, like ``wsgi.input``. Multipart uploads go straight into Django's
  upload handlers (memory up to ``FILE_UPLOAD_MAX_MEMORY_SIZE``, temporary files beyond);
  ``request.body`` stops one byte past ``DATA_UPLOAD_MAX_MEMORY_SIZE``; a body the view never
  reads is never read.
* More is coming for an async view: :func:`spooled_body` reads it all first, as Django's
  ``read_body`` does, into a ``SpooledTemporaryFile`` that rolls over to disk beyond
  ``FILE_UPLOAD_MAX_MEMORY_SIZE``; once on disk, writes go to a pool thread, not the loop.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from concurrent.futures import Executor
from typing import IO

from django.conf import settings
from django.core.exceptions import RequestAborted

from narrows.asgi.bridge import LoopBridge
from narrows.types import Message, Receive

__all__ = ["BODY_BUFFER", "spooled_body", "streamed_body"]

#: Read-ahead of a streamed body, the same as Django's upload chunk size.
BODY_BUFFER = 64 * 1024


class _BridgedBody(io.RawIOBase):
    """The rest of a request body, pulled message by message from the event loop."""

    def __init__(self, bridge: LoopBridge, first: bytes) -> None:
        self._bridge = bridge
        self._chunk = first
        self._offset = 0
        self._last = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while self._offset >= len(self._chunk):
            if self._last:
                return 0
            message = self._bridge.receive()  # ClientGone (an OSError) if the client left
            self._chunk = message.get("body", b"")
            self._offset = 0
            self._last = not message.get("more_body", False)
        size = min(len(buffer), len(self._chunk) - self._offset)
        buffer[:size] = self._chunk[self._offset : self._offset + size]
        self._offset += size
        return size


def streamed_body(bridge: LoopBridge, first: bytes) -> IO[bytes]:
    """A read-only, non-seekable file of the body: ``first``, then what the client sends."""
    return io.BufferedReader(_BridgedBody(bridge, first), BODY_BUFFER)


async def spooled_body(receive: Receive, first: Message, pool: Executor) -> IO[bytes]:
    """The whole body in a ``SpooledTemporaryFile`` (Django's ``read_body``, seeded with
    the message already received); ``RequestAborted`` if the client disconnects."""
    body_file = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (returned open)
        max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b"
    )
    loop = asyncio.get_running_loop()
    message = first
    while True:
        if message["type"] == "http.disconnect":
            body_file.close()
            raise RequestAborted()
        chunk = message.get("body", b"")
        if chunk:
            if getattr(body_file, "_rolled", False):  # on disk now: not on the loop
                await loop.run_in_executor(pool, body_file.write, chunk)
            else:
                body_file.write(chunk)
        if not message.get("more_body", False):
            break
        message = await receive()
    body_file.seek(0)
    return body_file
