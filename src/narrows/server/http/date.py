"""The ``Date`` response header, formatted at most once a second.

Formatting an HTTP date costs more than the rest of a small response head; every response in
the same second shares one pre-encoded header line.
"""

from __future__ import annotations

import time
from email.utils import formatdate


class DateHeader:
    """``line()`` -> b"date: Sun, 22 Nov 2026 01:02:03 GMT\\r\\n", recomputed each second."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._line = b"date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        return self._line
