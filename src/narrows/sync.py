"""The one seam between sync and async consumers.

Consumer logic (dispatch, the WebSocket accept/send/close flow, JSON, HTTP) is written once,
as coroutines, in terms of three operations:

* :func:`call_hook` calls a method the user may override (``connect``, ``receive``, a
  message handler). On an async consumer the result is awaited; on a sync consumer it is
  the plain return value.
* :func:`call_async` calls an async-only API such as the channel layer: awaited on an async
  consumer, run through ``async_to_sync`` (on the event loop) on a sync consumer.
* :func:`run_sync` runs such a coroutine to completion in the current thread. On a sync
  consumer nothing in the flow ever suspends (every hook is plain, every async API has been
  bridged by ``async_to_sync``), so the coroutine finishes in a single step.

The sync classes (``SyncConsumer``, ``WebsocketConsumer``, ``JsonWebsocketConsumer``) are
thin methods that ``run_sync`` the same flows the async classes ``await``; their handlers
run in a worker thread through ``narrows.db.database_sync_to_async``, as in Channels.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from asgiref.sync import async_to_sync

__all__ = ["call_async", "call_hook", "run_sync"]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to completion, synchronously."""
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coro.close()
    name = getattr(coro, "__qualname__", coro)
    raise RuntimeError(
        f"expected {name} to finish without suspending on a sync consumer, "
        f"got a suspension on {yielded!r} (is an async method overridden on a sync consumer?)"
    )


def _hook_name(hook: Callable[..., object]) -> str:
    return getattr(hook, "__qualname__", None) or repr(hook)


async def call_hook(sync: bool, hook: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call an overridable consumer method in the consumer's colour (sync or async)."""
    result = hook(*args, **kwargs)
    if sync:
        if result is not None and inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise TypeError(
                f"expected {_hook_name(hook)} to be a plain method on a sync consumer, "
                "got an async one (derive from the Async... consumer class to use async def)"
            )
        return result
    if type(result) is not types.CoroutineType and not inspect.isawaitable(result):
        raise TypeError(
            f"expected {_hook_name(hook)} to be 'async def' on an async consumer, got a plain "
            f"method returning {type(result).__name__} (derive from the sync consumer class, "
            "or add async)"
        )
    return await result


async def call_async(sync: bool, func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Call an async-only API (the channel layer) from either kind of consumer."""
    if sync:
        return async_to_sync(func)(*args)
    return await func(*args)
