"""Where a request's thread-sensitive sync code runs: the process's pool, one call at a time.

Django's ``ASGIHandler`` wraps every request in asgiref's ``ThreadSensitiveContext``, which
makes a new ``ThreadPoolExecutor`` with one new thread per request: every
``sync_to_async(thread_sensitive=True)`` call of the request (sync middleware, sync views,
signals, ``await Model.objects.aget()``) runs there, and the thread, with the database
connection it opened, is thrown away when the request ends.

:class:`RequestThreads` is the same context with another executor: a :class:`SerialExecutor`
that runs the request's calls one at a time, in order, on the pool's long-lived threads, so
connections are reused (``CONN_MAX_AGE``) and the number of threads stays bounded. Successive
calls of one request may land on different pool threads: ``threading.local`` state does not
carry from one call to the next (contextvars, and so Django's own request state, do).
A sync view served by :mod:`narrows.asgi.threaded` is one call, so it sees one thread from
``request_started`` to ``request_finished``, as under a WSGI server.

It plugs into asgiref the way ``ThreadSensitiveContext`` does (the
``SyncToAsync.thread_sensitive_context`` variable and ``context_to_thread_executor`` map),
which asgiref has kept stable since 3.3.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync, ThreadSensitiveContext

__all__ = ["RequestThreads", "SerialExecutor"]

T = TypeVar("T")


class SerialExecutor(Executor):
    """Runs its jobs one after another, in submission order, on another executor's threads."""

    __slots__ = ("_busy", "_lock", "_pending", "_pool")

    def __init__(self, pool: Executor) -> None:
        self._pool = pool
        self._lock = threading.Lock()
        self._busy = False
        self._pending: collections.deque[
            tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]
        ] = collections.deque()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._busy:
                self._pending.append((future, fn, args, kwargs))
                return future
            self._busy = True
        self._pool.submit(self._run, future, fn, args, kwargs)
        return future

    def _run(
        self,
        future: Future[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        # In a pool thread: this job, then any that queued up behind it, on this thread.
        while True:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)
                    del exc
            with self._lock:
                if not self._pending:
                    self._busy = False
                    return
                future, fn, args, kwargs = self._pending.popleft()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to stop: the threads belong to the pool."""


class RequestThreads(ThreadSensitiveContext):
    """``async with RequestThreads(pool):`` sends thread-sensitive calls to ``pool``, serially.

    A subclass of asgiref's ``ThreadSensitiveContext`` so that code checking for one finds
    it; entered once per request, like Django's.
    """

    def __init__(self, pool: Executor) -> None:
        super().__init__()
        self.executor = SerialExecutor(pool)

    async def __aenter__(self) -> RequestThreads:
        self.token = SyncToAsync.thread_sensitive_context.set(self)
        SyncToAsync.context_to_thread_executor[self] = self.executor
        return self

    async def __aexit__(self, exc: Any, value: Any, tb: Any) -> None:
        SyncToAsync.context_to_thread_executor.pop(self, None)
        if self.token is not None:
            SyncToAsync.thread_sensitive_context.reset(self.token)
            self.token = None
        # As after Django's context: a task that outlives the request and then calls
        # thread-sensitive code gets a thread of its own from asgiref.
