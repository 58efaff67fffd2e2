"""Small helpers shared by the framework, with Channels' names."""

from __future__ import annotations

import asyncio
import types
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["await_many_dispatch", "name_that_thing"]


def name_that_thing(thing: object) -> str:
    """A dotted ``module.Name`` for a function, method, class or instance (as Channels)."""
    if isinstance(thing, types.MethodType):
        owner = thing.__self__
        owner_name = name_that_thing(owner if isinstance(owner, type) else type(owner))
        return f"{owner_name}.{thing.__func__.__name__}"
    if isinstance(thing, type | types.FunctionType | types.BuiltinFunctionType):
        return f"{thing.__module__}.{thing.__qualname__}"
    if hasattr(thing, "__name__") and hasattr(thing, "__module__"):
        # Named callables that are not plain functions (functools.partial-likes, modules).
        return f"{thing.__module__}.{thing.__name__}"
    if isinstance(thing, types.ModuleType):
        return thing.__name__
    return name_that_thing(type(thing))


async def await_many_dispatch(
    consumer_callables: Sequence[Callable[[], Awaitable[Any]]],
    dispatch: Callable[[Any], Awaitable[Any]],
) -> None:
    """Await every source at once and pass each result to ``dispatch``, forever.

    Same contract as Channels: a source is awaited again only after its previous result was
    dispatched, results are dispatched one at a time, and the pending awaits are cancelled
    when ``dispatch`` raises (``StopConsumer`` included) or this coroutine is cancelled.

    Unlike Channels this does not call ``asyncio.wait`` (which builds a set, a future and
    a callback per source on every message): each source task reports completion through a
    done-callback into a ready queue, and one future wakes the loop.
    """
    loop = asyncio.get_running_loop()
    ready: deque[int] = deque()
    waiter: list[asyncio.Future[None] | None] = [None]

    def start(index: int) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(consumer_callables[index]())

        def done(_: asyncio.Future[Any]) -> None:
            ready.append(index)
            fut = waiter[0]
            if fut is not None and not fut.done():
                fut.set_result(None)

        task.add_done_callback(done)
        return task

    tasks = [start(i) for i in range(len(consumer_callables))]
    try:
        while True:
            if not ready:
                fut = waiter[0] = loop.create_future()
                await fut
                waiter[0] = None
            while ready:
                index = ready.popleft()
                result = tasks[index].result()
                await dispatch(result)
                tasks[index] = start(index)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                # A source that failed while we were already stopping: the error that
                # stopped us is the one to report.
                pass
