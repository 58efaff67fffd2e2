"""Event loop selection: ``--loop auto|uvloop|asyncio``.

``auto`` uses uvloop when it is installed (it is a dependency on CPython outside Windows),
else asyncio's own loop; ``uvloop`` insists on it. The server process (``main``) and every
``--workers`` process (``workers``) pick their loop here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["LoopUnavailable", "loop_factory"]


class LoopUnavailable(RuntimeError):
    """``--loop uvloop`` was asked for but uvloop is not installed."""


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """What ``asyncio.Runner(loop_factory=...)`` should call for ``--loop name``."""
    if name != "asyncio":
        try:
            import uvloop
        except ImportError as exc:
            if name == "uvloop":
                raise LoopUnavailable(
                    "--loop uvloop asked for, but uvloop is not installed"
                ) from exc
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop
