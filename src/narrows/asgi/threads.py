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

import asyncio
import collections
import contextvars
import sys
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from asgiref.sync import AsyncToSync, SyncToAsync, ThreadSensitiveContext, sync_to_async

from narrows.asgi.pool import Job, ThreadPool, restore_context, run_for_loop

__all__ = ["RequestThreads", "SerialExecutor", "in_request_thread"]

T = TypeVar("T")


class SerialExecutor(Executor):
    """Runs its jobs one after another, in submission order, on a pool's threads."""

    __slots__ = ("_busy", "_lock", "_pending", "_pool")

    def __init__(self, pool: ThreadPool) -> None:
        self._pool = pool
        self._lock = threading.Lock()
        self._busy = False
        self._pending: collections.deque[Job] = collections.deque()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        self._add((future, fn, args, kwargs))
        return future

    def call(self, fn: Callable[..., Any], /, *args: Any) -> None:
        """Run ``fn(*args)`` in turn with no future (``fn`` reports its own outcome)."""
        self._add((None, fn, args, {}))

    def _add(self, job: Job) -> None:
        with self._lock:
            if self._busy:
                self._pending.append(job)
                return
            self._busy = True
        self._pool.call(self._run, job)

    def _run(self, job: Job) -> None:
        # In a pool thread: this job, then any that queued up behind it, on this thread.
        while True:
            future, fn, args, kwargs = job
            if future is None:
                try:
                    fn(*args)
                except BaseException:  # fn reports its outcome
                    pass
            elif future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)
                    del exc
            del future, fn, args, kwargs
            with self._lock:
                if not self._pending:
                    self._busy = False
                    return
                job = self._pending.popleft()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to stop: the threads belong to the pool."""


def in_request_thread(fn: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """``sync_to_async(fn)`` for narrows' own hops (the middleware segments' phases): the
    same call, context and executor, without ``SyncToAsync``'s future chain and shield.

    Inside :class:`RequestThreads` it runs ``fn`` through the request's
    :class:`SerialExecutor` (in turn with the request's other thread-sensitive calls), in
    a copy of the caller's context whose changes (``translation.activate``, ``set_urlconf``,
    any ``ContextVar``) are written back afterwards, as ``SyncToAsync`` writes them back;
    an ``async_to_sync`` task started inside it is cancelled with the caller, as
    ``SyncToAsync`` cancels it. Anywhere else (inside an outer ``async_to_sync``, under
    another thread-sensitive context, in an ``except`` block whose exception ``fn`` might
    look at) it is ``sync_to_async(fn)`` itself.
    """
    slow = sync_to_async(fn)

    async def call(*args: Any) -> T:
        owner = SyncToAsync.thread_sensitive_context.get(None)
        executor = SyncToAsync.context_to_thread_executor.get(owner) if owner is not None else None
        if (
            not isinstance(executor, SerialExecutor)
            or sys.exc_info()[1] is not None
            or getattr(AsyncToSync.executors, "current", None) is not None
        ):
            return await slow(*args)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        context = contextvars.copy_context()
        task_context: list[asyncio.Task[Any]] = []
        executor.call(run_for_loop, loop, future, context, fn, args, task_context)
        try:
            return await future
        except asyncio.CancelledError:
            if task_context:
                task_context[0].cancel()
            raise
        finally:
            restore_context(context)

    return call


class RequestThreads(ThreadSensitiveContext):
    """``async with RequestThreads(pool):`` sends thread-sensitive calls to ``pool``, serially.

    A subclass of asgiref's ``ThreadSensitiveContext`` so that code checking for one finds
    it; entered once per request, like Django's.
    """

    def __init__(self, pool: ThreadPool) -> None:
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
