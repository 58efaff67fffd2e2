"""The bounded pool of long-lived threads that runs Django's sync code, one per process.

Like gunicorn's gthread worker: a fixed number of threads, each keeping its own database
connections from request to request (Django's connections are per thread), and requests
waiting their turn in a queue when every thread is busy, while the event loop goes on
serving WebSockets. Unlike it, only two jobs compute at once unless running ones are
waiting (see :class:`ThreadPool`): threads overlap waits, not computation.

Written here rather than taken from ``concurrent.futures.ThreadPoolExecutor`` because its
threads cannot be daemons: the interpreter joins them at exit, so one view stuck in a
``sleep(3600)`` would keep a stopped server from exiting after its graceful drain. The
futures are the standard ``concurrent.futures.Future``, so asgiref's ``SyncToAsync`` and
``loop.run_in_executor`` use the pool as any executor.

Size, first found: the ``NARROWS_THREADS`` environment variable (what ``narrows
--threads N`` sets), the ``NARROWS_THREADS`` Django setting, the ``ASGI_THREADS`` environment
variable that asgiref and Daphne read, else :data:`DEFAULT_THREADS`.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync

try:  # not public API; what SyncToAsync runs in its thread before the function
    from asgiref.sync import _restore_context
except ImportError:  # pragma: no cover
    _restore_context = None  # type: ignore[assignment]
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["DEFAULT_THREADS", "ThreadPool", "get_pool", "run_in_pool", "thread_count"]

T = TypeVar("T")

#: Threads per process when nothing says otherwise: enough to overlap database and
#: network waits. Only two compute at once (see ThreadPool), so more threads do not cost
#: CPU on CPU-bound pages; each may hold a database connection.
DEFAULT_THREADS = 8

_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def _positive(value: object, source: str) -> int:
    try:
        number: int = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{source} must be a positive integer, got {value!r}") from None
    if number < 1:
        raise ImproperlyConfigured(f"{source} must be a positive integer, got {value!r}")
    return number


def thread_count() -> int:
    """How many threads the pool has (see the module docstring for the order)."""
    flag = os.environ.get("NARROWS_THREADS")
    if flag:
        return _positive(flag, "The NARROWS_THREADS environment variable (--threads)")
    setting = getattr(settings, "NARROWS_THREADS", None)
    if setting is not None:
        return _positive(setting, "settings.NARROWS_THREADS")
    asgi_threads = os.environ.get("ASGI_THREADS")
    if asgi_threads:
        return _positive(asgi_threads, "The ASGI_THREADS environment variable")
    return DEFAULT_THREADS


class ThreadPool(Executor):
    """``size`` daemon threads taking jobs from one FIFO queue, ``floor`` of them at once
    unless the running ones wait.

    Python runs one thread at a time (the GIL), so a second thread computing beside the
    first only adds GIL hand-offs, each a context switch: on a CPU-bound page, four busy
    threads cost a third more CPU per request than one. Threads pay off while a view waits
    (database, network, sleep). So at most ``floor`` jobs start at once, and each running
    job that has been running for ``stall`` seconds (taken to be waiting) lets one more
    start, up to ``size``: a pool of 8 behaves like 2 threads for fast pages and like 8 for
    views that wait.
    """

    def __init__(
        self, size: int, name: str = "narrows-django", *, floor: int = 2, stall: float = 0.005
    ) -> None:
        self.size = size
        self.floor = max(1, min(floor, size))
        self.stall = stall
        self._name = name
        self._jobs: collections.deque[_Job] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        #: start time (monotonic) of each running job, by thread
        self._running: dict[int, float] = {}
        self._watching = False  # one idle thread re-checks for stalled jobs while work waits
        self._threads: list[threading.Thread] = []
        self._shutdown = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._cond:
            if self._shutdown:
                raise RuntimeError("cannot schedule new work after the thread pool was shut down")
            if len(self._threads) < self.size:
                self._start_threads()
            self._jobs.append((future, fn, args, kwargs))
            if self._may_start(time.monotonic()) or not self._watching:
                self._cond.notify()  # a thread to run it, or to watch for stalls
        return future

    def _may_start(self, now: float) -> bool:
        """Under the lock: may one more job start now?"""
        running = len(self._running)
        if running < self.floor:
            return True
        if running >= self.size:
            return False
        waiting = sum(1 for started in self._running.values() if now - started >= self.stall)
        return running < self.floor + waiting

    def _start_threads(self) -> None:
        # All at once on first use: an idle thread costs a little memory.
        while len(self._threads) < self.size:
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _next(self, me: int) -> _Job | None:
        """Wait for a job this thread may start; None when the pool shuts down."""
        cond = self._cond
        with cond:
            while True:
                if self._shutdown and not self._jobs:
                    return None
                now = time.monotonic()
                if self._jobs and self._may_start(now):
                    self._running[me] = now
                    job = self._jobs.popleft()
                    if self._jobs and (self._may_start(now) or not self._watching):
                        cond.notify()  # another may start too, or watch for stalls
                    return job
                if self._jobs and not self._watching:
                    # Work is waiting behind running jobs: look again when one may stall.
                    self._watching = True
                    cond.wait(self.stall)
                    self._watching = False
                else:
                    cond.wait()

    def _work(self) -> None:
        me = threading.get_ident()
        while True:
            job = self._next(me)
            if job is None:
                return
            future, fn, args, kwargs = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)
                    del exc
            # Drop the references now, not when the next job arrives: a response or request
            # kept alive by an idle thread would hold its files and memory.
            del job, future, fn, args, kwargs
            with self._cond:
                del self._running[me]
                if self._jobs:
                    self._cond.notify()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._cond:
            self._shutdown = True
            threads = list(self._threads)
            if cancel_futures:
                while self._jobs:
                    self._jobs.popleft()[0].cancel()
            self._cond.notify_all()
        if wait:
            for thread in threads:
                thread.join()


def run_in_pool(pool: ThreadPool, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run ``fn(*args)`` in ``pool`` as ``sync_to_async`` would, for one hop per request.

    The function runs in a copy of the caller's context and sees the event loop the way
    ``SyncToAsync`` shows it to its threads (so ``async_to_sync`` inside it runs the
    coroutine on this loop); the result comes back through a plain asyncio future, without
    ``SyncToAsync``'s ``concurrent.futures`` chain, shield and context write-back, which
    a request that ends with this call does not need. Cancelling the future abandons the
    result; the call itself runs to its end (a thread cannot be interrupted).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()
    pool.submit(_run_for_loop, loop, future, context, fn, args)
    return future


def _run_for_loop(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    context: contextvars.Context,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    local = SyncToAsync.threadlocal  # what SyncToAsync.thread_handler sets for AsyncToSync
    local.main_event_loop = loop
    local.main_event_loop_pid = os.getpid()
    local.task_context = None
    try:
        result = context.run(_in_context, context, fn, args)
    except BaseException as exc:
        loop.call_soon_threadsafe(_settle, future, None, exc)
        if not isinstance(exc, Exception):
            raise
    else:
        loop.call_soon_threadsafe(_settle, future, result, None)
    finally:
        local.main_event_loop = None


def _in_context(context: contextvars.Context, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    # As SyncToAsync does on entering its thread: asgiref Local data set on the loop moves
    # to this thread with the context (asgiref tags it with its thread, since 3.13).
    if _restore_context is not None:
        _restore_context(context)
    return fn(*args)


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():  # cancelled while the thread worked
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


_pool: ThreadPool | None = None
_pool_lock = threading.Lock()


def get_pool() -> ThreadPool:
    """The process's pool, made on first use with :func:`thread_count` threads."""
    global _pool
    pool = _pool
    if pool is None:
        with _pool_lock:
            pool = _pool
            if pool is None:
                pool = _pool = ThreadPool(thread_count())
    return pool


def _forget_pool_in_child() -> None:
    # Threads do not survive fork(): a forked worker makes its own pool on first use.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_in_child)
