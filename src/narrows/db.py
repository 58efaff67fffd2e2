"""Django database connection hygiene for consumers (Channels' ``channels.db``).

Django closes stale connections around each request (``request_started`` /
``request_finished``). A consumer is not a request, so the framework does it here:

* ``database_sync_to_async`` closes old connections in the worker thread before and after
  the wrapped function, i.e. exactly where the database is used. ``SyncConsumer`` (and so
  ``WebsocketConsumer``) runs every handler through it.
* ``aclose_old_connections`` does the same from async code, hopping to the thread Django's
  async ORM uses. narrows calls it when an async consumer starts and when it ends, not
  before every message as Channels 4.2+ does: that per-message thread hop is what caps a
  Channels echo consumer at a few thousand messages per second. A consumer that holds a
  WebSocket open for hours and uses the async ORM can call it itself, as in Channels.

The testing communicators turn the closing off for the application they run
(:func:`connection_closing_disabled`), as Channels' communicators do: tests run inside a
transaction, and closing the connection in the middle of it would break the test.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import SyncToAsync, sync_to_async
from django.db import close_old_connections as _django_close_old_connections

__all__ = ["DatabaseSyncToAsync", "aclose_old_connections", "database_sync_to_async"]

T = TypeVar("T")
P = ParamSpec("P")

_closing_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "narrows_db_closing_enabled", default=True
)


def connection_closing_disabled() -> contextvars.Token[bool]:
    """Turn connection closing off for the current context (used by narrows.testing)."""
    return _closing_enabled.set(False)


def close_old_connections() -> None:
    """Django's ``close_old_connections`` unless the current context turned it off."""
    if _closing_enabled.get():
        _django_close_old_connections()


class DatabaseSyncToAsync(SyncToAsync[P, T]):
    """``sync_to_async`` that closes stale database connections around the call.

    The closing runs inside the call's copied context (not in ``thread_handler`` as in
    Channels), so a context that turned closing off keeps it off in the thread.
    """

    def __init__(
        self, func: Callable[P, T], thread_sensitive: bool = True, executor: Any = None
    ) -> None:
        @functools.wraps(func)
        def with_fresh_connections(*args: P.args, **kwargs: P.kwargs) -> T:
            close_old_connections()
            try:
                return func(*args, **kwargs)
            finally:
                close_old_connections()

        super().__init__(
            with_fresh_connections, thread_sensitive=thread_sensitive, executor=executor
        )


def database_sync_to_async(
    func: Callable[P, T], *, thread_sensitive: bool = True
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Wrap a sync function that uses the database so it can be awaited.

    Usable as ``@database_sync_to_async`` or ``database_sync_to_async(func)``, like Channels.
    """
    return DatabaseSyncToAsync(func, thread_sensitive=thread_sensitive)


async def aclose_old_connections() -> None:
    """Close stale connections in the thread Django's async ORM uses.

    Skipped without a thread hop when closing is turned off or no database is configured.
    """
    if not _closing_enabled.get() or not _databases_configured():
        return
    await sync_to_async(_django_close_old_connections)()


def _databases_configured() -> bool:
    from django.conf import settings

    return bool(getattr(settings, "DATABASES", None))
