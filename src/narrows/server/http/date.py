"""The ``Date`` response header, formatted at most once a second.

Formatting an HTTP date costs more than the rest of a small response head; every response in
the same second shares one pre-encoded header line. A running server also ``start``s a
once-a-second loop timer that refreshes ``value``, so a response reads an attribute instead
of reading the clock (uvicorn's server tick does the same for its default headers).
"""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate


class DateHeader:
    """``line()`` -> b"date: Sun, 22 Nov 2026 01:02:03 GMT\\r\\n", recomputed each second."""

    __slots__ = ("_handle", "_second", "ticking", "value")

    def __init__(self) -> None:
        self._second = -1
        #: The current line while ``ticking`` (kept fresh by the timer); else call ``line()``.
        self.value = b""
        self.ticking = False
        self._handle: asyncio.TimerHandle | None = None

    def line(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self.value = b"date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        return self.value

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Refresh ``value`` just after every wall-clock second from now on."""
        self.ticking = False
        self.line()
        self._handle = loop.call_later(1.0 - time.time() % 1.0, self._tick, loop)
        self.ticking = True

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.line()
        # A little past the boundary: a timer that fires early would keep the old second.
        self._handle = loop.call_later(1.001 - time.time() % 1.0, self._tick, loop)

    def stop(self) -> None:
        self.ticking = False
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
