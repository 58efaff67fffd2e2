"""How the server runs an application call: in a Task of its own, eagerly where Python can.

Every request runs inside an ``asyncio.Task`` with its own ``contextvars`` context, so that
``asyncio.current_task()``, ``asyncio.timeout()`` and ``asyncio.TaskGroup()`` work from an
application's first statement. On Python 3.12+ the Task starts eagerly: it runs at once, up
to its first suspension, and one that finishes there (a response that needs no waiting) is
never scheduled on the loop. Python 3.11 has no eager start; there the Task's first step
runs on the loop's next iteration, as for any ``create_task``.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Coroutine
from typing import Any

__all__ = ["EAGER", "start_task"]

#: Whether a started Task runs its first step before the start returns (Python 3.12+).
EAGER = sys.version_info >= (3, 12)


def start_task(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, None],
    context: contextvars.Context,
) -> asyncio.Task[None]:
    """Run ``coro`` in a new Task in ``context``: eagerly on 3.12+, scheduled on 3.11.

    (The HTTP protocol makes the same call written out, to spare a Python frame per request.)
    """
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, context=context, eager_start=True)
    return loop.create_task(coro, context=context)
