"""Small helpers shared by the framework, with Channels' names."""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["await_many_dispatch", "name_that_thing"]

logger = logging.getLogger("narrows.consumer")


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

    Channels re-creates a task per message and calls ``asyncio.wait`` each time (several
    event-loop round trips per message). Here each source has one long-lived pump that
    receives and dispatches under a lock (uncontended: no suspension): the first source
    (the client's ``receive``) is pumped inline, so a client message costs no extra task
    and no extra loop iteration.
    """
    if not consumer_callables:
        raise ValueError("await_many_dispatch expected at least one source, got none")
    lock = asyncio.Lock()
    main = asyncio.current_task()
    failures: list[BaseException] = []

    async def pump(source: Callable[[], Awaitable[Any]]) -> None:
        while True:
            message = await source()
            dispatching = False
            try:
                async with lock:
                    dispatching = True
                    await dispatch(message)
            except asyncio.CancelledError:
                if not dispatching:
                    # Received while another message was being dispatched, and the consumer
                    # stopped meanwhile: say so rather than drop it silently.
                    logger.info(
                        "consumer stopped before dispatching a received %r message; dropped",
                        message.get("type") if isinstance(message, dict) else type(message),
                    )
                raise

    def on_pump_done(task: asyncio.Task[None]) -> None:
        if task.cancelled() or main is None:
            return
        error = task.exception()
        if error is not None and not failures:
            failures.append(error)
            if not lock.locked():
                # The inline pump is waiting for its source: interrupt it. (While it is
                # dispatching, it checks ``failures`` once the handler has finished.)
                main.cancel()

    others = [asyncio.ensure_future(pump(source)) for source in consumer_callables[1:]]
    for task in others:
        task.add_done_callback(on_pump_done)
    first = consumer_callables[0]
    try:
        while True:
            message = await first()
            async with lock:
                await dispatch(message)
            if failures:
                raise failures[0]
    except asyncio.CancelledError:
        if not failures:
            raise  # cancelled from outside
        if main is not None:
            main.uncancel()
        raise failures[0] from None
    finally:
        for task in others:
            task.remove_done_callback(on_pump_done)
            task.cancel()
        if others:
            # Wait for the pumps to finish; their own errors were raised above if relevant.
            await asyncio.wait(others)
