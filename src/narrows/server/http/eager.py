"""Start a request's coroutine without a Task; make it a Task only if it suspends.

Most small responses (hello world, cached pages, health checks) finish without ever
waiting: ``send()`` does not suspend unless the transport is over its high-water mark.
Running the first step directly saves creating and scheduling a Task per request — what
Python 3.12's eager task factory does, done here for 3.11 too. The first step runs in its
own copy of the context (as a Task would), and a coroutine that does suspend continues in
a Task with that same context. Until it suspends, ``asyncio.current_task()`` is the
caller's task (None inside protocol callbacks), as with 3.12's eager tasks before their
first suspension, so on 3.12+ the real eager start is used instead.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["Resume", "start_eagerly"]

_NATIVE_EAGER = sys.version_info >= (3, 12)


class Resume:
    """An awaitable that resumes a coroutine which already yielded ``first``."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self._coro
        value = self._first
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in by the Task, e.g. CancelledError
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _continue(coro: Coroutine[Any, Any, None], first: Any) -> None:
    await Resume(coro, first)


def start_eagerly(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
) -> asyncio.Task[None] | None:
    """Run ``coro`` until it first suspends; return the Task that continues it, or None."""
    if _NATIVE_EAGER:
        task: asyncio.Task[None] = asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
        return None if task.done() else task
    context = contextvars.copy_context()
    try:
        first = context.run(coro.send, None)
    except StopIteration:
        return None
    return loop.create_task(_continue(coro, first), context=context)
