"""The bounded pool of long-lived threads that runs Django's sync code, one per process.

Like gunicorn's gthread worker: a fixed number of threads, each keeping its own database
connections from request to request (Django's connections are per thread), and requests
waiting their turn in a queue when every thread is busy, while the event loop goes on
serving WebSockets. Unlike it, one job computes at a time unless running ones are
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

__all__ = [
    "DEFAULT_THREADS",
    "ThreadPool",
    "get_pool",
    "report_to_loop",
    "run_in_pool",
    "thread_count",
]

T = TypeVar("T")

#: Threads per process when nothing says otherwise: enough to overlap database and
#: network waits. One computes at a time (see ThreadPool), so more threads do not cost
#: CPU on CPU-bound pages; each may hold a database connection.
DEFAULT_THREADS = 8

#: (future or None, function, args, kwargs): no future for :meth:`ThreadPool.call`
Job = tuple[Future[Any] | None, Callable[..., Any], tuple[Any, ...], dict[str, Any]]
#: (callback, args): a job's outcome, to be run on the event loop it came from
Report = tuple[Callable[..., Any], tuple[Any, ...]]

#: A running job whose thread used less than this share of a CPU since it started is
#: waiting (database, network, sleep), not computing.
WAITING_SHARE = 0.25


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


class _Worker:
    """One pool thread: parked on ``wake`` while idle, handed a job through ``job``.

    :meth:`times` tells a running job that computes from one that waits. It reads the
    thread's ``/proc`` schedstat where Linux has it: CPU time, and time spent runnable but
    waiting for a CPU (taken by other processes: a thread starved of CPU is not waiting on
    I/O). Elsewhere, the thread's CPU clock.
    """

    __slots__ = ("at_start", "clock", "job", "schedstat", "started", "wake")

    def __init__(self) -> None:
        self.wake = threading.Lock()
        self.wake.acquire()  # held: acquiring it again parks the thread until released
        self.job: Job | None = None
        self.started = 0.0  # monotonic time the running job started
        self.at_start: tuple[float, float] | None = None  # times() then
        self.clock: int | None = None
        self.schedstat: int | None = None

    def bind(self) -> None:
        """In the worker's own thread: find its CPU accounting."""
        try:
            self.schedstat = os.open(
                f"/proc/self/task/{threading.get_native_id()}/schedstat", os.O_RDONLY
            )
        except (AttributeError, OSError):
            try:
                self.clock = time.pthread_getcpuclockid(threading.get_ident())
            except (AttributeError, OSError):
                pass  # no CPU accounting: a job's age alone decides (see ThreadPool)

    def times(self) -> tuple[float, float] | None:
        """(CPU time, CPU time + time waiting for a CPU) of the thread so far, seconds."""
        fd = self.schedstat
        if fd is not None:
            try:
                fields = os.pread(fd, 64, 0).split()
                cpu = int(fields[0]) / 1e9
                return cpu, cpu + int(fields[1]) / 1e9
            except (OSError, ValueError, IndexError):
                pass  # unreadable: the age rule decides (the owner closes the file)
        if self.clock is not None:
            cpu = time.clock_gettime(self.clock)
            return cpu, cpu
        return None

    def unbind(self) -> None:
        """In the worker's own thread once it stops (or in a forked child)."""
        fd, self.schedstat = self.schedstat, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


class ThreadPool(Executor):
    """``size`` daemon threads taking jobs in FIFO order, ``floor`` (1) computing at once.

    Python runs one thread at a time (the GIL), and every time a thread releases it (a
    system call, an SQLite step, each ``os.urandom`` of Django's CSRF token) a thread
    waiting for it takes it: two computing threads hand it back and forth dozens of times
    per request, each hand-off a context switch. Threads pay off only while a view waits.
    So a job holds one of ``floor`` compute slots until it has run ``stall`` seconds
    using less than :data:`WAITING_SHARE` of a CPU (it waits: another job may start), or
    has used ``long`` seconds of CPU (a long job must not hold up short ones); up to
    ``size`` jobs run at once. Time a thread spends runnable but waiting for a CPU (other
    processes' load) counts as computing, not waiting. Where threads have no CPU
    accounting, a job frees its slot once it has run ``long`` seconds.

    Hand-offs are exact: a job goes to the most recently idle thread (its caches and its
    database connection are the warmest), a thread that finishes a job takes the next one
    itself, and an idle thread is woken only to run a job. While jobs wait for a slot, the
    running ones are re-checked every ``stall`` seconds: by a timer of the event loop the
    jobs come from (a loop serving requests wakes for their I/O anyway), else by an idle
    thread woken to watch (also when that loop has stopped, from the next submission or
    finished job on).

    A finished job's outcome goes back to its event loop through :meth:`report`. Each
    wake-up of the loop takes the GIL from the thread computing the next job, a pair of
    context switches for both; so while jobs wait and that loop's re-check timer is armed,
    reports are held and delivered together: with the next report that is posted, by the
    loop itself when it next submits a job (it is awake then), or by its timer, within
    ``hold`` seconds (see below). Held reports wait only while the pool is the bottleneck (jobs
    queue behind them), and one wake-up of the loop delivers several.

    The loop's re-check backs off while it finds nothing to start: each one that finds
    every running job computing doubles the next one's delay, up to ``hold`` seconds; one
    that starts a job, or a queue that empties, brings it back to ``stall``. A timer that
    fires while a job computes takes the GIL from it, and the outcomes it delivers let the
    clients send their next requests, which wake the loop again. So on CPU-bound views the
    loop wakes every ``hold`` seconds with several outcomes instead of every ``stall``
    with one or two; a view that waits is found out within ``hold`` at worst, and the
    re-checks are back to every ``stall`` from then on.
    """

    def __init__(
        self,
        size: int,
        name: str = "narrows-django",
        *,
        floor: int = 1,
        stall: float = 0.005,
        long: float = 0.02,
        hold: float = 0.02,
    ) -> None:
        self.size = size
        self.floor = max(1, min(floor, size))
        self.stall = stall
        self.long = long
        self.hold = max(hold, stall)
        #: the loop's re-checks in a row that found nothing to start (they back off)
        self._fruitless = 0
        self._name = name
        self._lock = threading.Lock()
        self._jobs: collections.deque[Job] = collections.deque()
        self._idle: list[_Worker] = []  # parked, most recently parked last
        self._running: set[_Worker] = set()
        self._watcher: _Worker | None = None  # the idle one re-checking while jobs wait
        #: the event loop whose timer re-checks instead, while one is armed; when it fires;
        #: the armed timer's token (a timer given up for a late one finds another token)
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._timer_due = 0.0
        self._timer_token = object()
        #: reports held for ``_timer_loop`` (never for another loop; empty without a timer)
        self._held: list[Report] = []
        self._threads: list[threading.Thread] = []
        self._workers: list[_Worker] = []  # every thread's, for its files
        self._shutdown = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        self._add((future, fn, args, kwargs))
        return future

    def call(self, fn: Callable[..., Any], /, *args: Any) -> None:
        """Run ``fn(*args)`` in the pool with no future: ``fn`` reports its own outcome
        (a ``concurrent.futures.Future`` costs a ``Condition`` per job)."""
        self._add((None, fn, args, {}))

    def _add(self, job: Job) -> None:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new work after the thread pool was shut down")
            if len(self._threads) < self.size:
                self._start_threads()
            self._jobs.append(job)
            if self._idle and self._may_start(time.monotonic()):
                self._hand_to_idle()
            held = self._held_for(asyncio._get_running_loop())
            self._watch()
        _run_reports(held)  # on their loop, which is awake: no wake-up needed

    def report(
        self,
        loop: asyncio.AbstractEventLoop,
        callback: Callable[..., Any],
        *args: Any,
        may_wait: bool = True,
    ) -> None:
        """In a pool thread, once a job is done: run ``callback(*args)`` on ``loop``, at once
        or held with other reports (see the class docstring). ``may_wait=False``: at once,
        for an outcome the caller needs to go on computing (its next step would queue)."""
        with self._lock:
            if may_wait and self._jobs and loop is self._timer_loop and self._loop_watches():
                self._held.append((callback, args))
                return
            held = self._held_for(loop)  # another loop's stay held for their timer
        held.append((callback, args))
        _post_reports(loop, held)

    def _held_for(self, loop: asyncio.AbstractEventLoop | None) -> list[Report]:
        """Under the lock: the held reports, taken, if ``loop`` is theirs (else none)."""
        if not self._held or loop is not self._timer_loop:
            return []
        return self._take_held()

    def _take_held(self) -> list[Report]:
        """Under the lock: the held reports, no longer held."""
        held, self._held = self._held, []
        return held

    def _hand_to_idle(self) -> None:
        """Under the lock: the next job to the most recently idle thread, woken for it."""
        worker = self._idle.pop()
        worker.job = self._start(worker)
        worker.wake.release()

    def _watch(self) -> None:
        """Under the lock: while jobs wait for a slot, make sure the running jobs are
        re-checked. Jobs submitted from an event loop are re-checked by a timer of that
        loop, which wakes for its own I/O anyway (a watching thread stands down at its
        next wake-up); otherwise by an idle thread woken to watch. A thread woken every
        ``stall`` seconds takes the GIL from the computing job each time it wakes."""
        if not self._jobs:
            self._fruitless = 0
            return
        loop = asyncio._get_running_loop()
        if loop is not None:
            self._watcher = None
            if self._idle and not self._loop_watches():
                self._timer_loop = loop
                self._timer_token = token = object()
                delay = self._watch_timeout()
                if self._fruitless:
                    delay = max(delay, min(self.stall * 2**self._fruitless, self.hold))
                self._timer_due = time.monotonic() + delay
                loop.call_later(delay, self._on_timer, token)
            return
        if self._watcher is None and self._idle and not self._loop_watches():
            self._watcher = worker = self._idle.pop(0)  # the coldest
            worker.wake.release()  # no job: it wakes to watch

    def _loop_watches(self) -> bool:
        """Under the lock: will an armed loop timer re-check? Not if its loop stopped or
        is late by more than ``stall`` (then an idle thread watches instead)."""
        loop = self._timer_loop
        if loop is None:
            return False
        if (
            loop.is_closed()
            or not loop.is_running()
            or (time.monotonic() > self._timer_due + self.stall)
        ):
            self._timer_loop = None
            _post_reports(loop, self._take_held())  # they run whenever the loop runs again
            return False
        return True

    def _on_timer(self, token: object) -> None:
        """On the event loop: the re-check a watching thread makes, handing jobs to idle
        threads as :meth:`_add` does."""
        with self._lock:
            if token is not self._timer_token:
                return  # given up as late: another timer or a thread watches
            held = self._take_held()  # this loop's (it still is the timer loop)
            self._timer_loop = None
            now = time.monotonic()
            started = False
            while self._jobs and self._idle and self._may_start(now):
                self._hand_to_idle()
                started = True
            self._fruitless = 0 if started else min(self._fruitless + 1, 16)
            self._watch()
        _run_reports(held)

    def _may_start(self, now: float) -> bool:
        """Under the lock: does a compute slot stay free for one more job?"""
        computing = 0
        for worker in self._running:
            elapsed = now - worker.started
            if elapsed >= self.stall:
                times, at_start = worker.times(), worker.at_start
                if times is None or at_start is None:
                    if elapsed >= self.long:
                        continue
                else:
                    used, busy = times[0] - at_start[0], times[1] - at_start[1]
                    if busy < WAITING_SHARE * elapsed or used >= self.long:
                        continue  # waiting, or long: its slot is free
            computing += 1
            if computing >= self.floor:
                return False
        return True

    def _start(self, worker: _Worker) -> Job:
        """Under the lock: the next job, now running on ``worker``."""
        worker.started = time.monotonic()
        worker.at_start = worker.times()
        self._running.add(worker)
        return self._jobs.popleft()

    def _start_threads(self) -> None:
        # All at once on first use: an idle thread costs a little memory.
        while len(self._threads) < self.size:
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        _thread_pool.pool = self  # for report_to_loop
        worker = _Worker()
        worker.bind()
        with self._lock:
            self._workers.append(worker)
        job = self._next(worker, finished=False)
        while job is not None:
            future, fn, args, kwargs = job
            if future is None:
                try:
                    fn(*args)
                except BaseException:  # fn reports its outcome; the thread lives on
                    pass
            elif future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)
                    del exc
            # Drop the references now, not when the next job arrives: a response or request
            # kept alive by an idle thread would hold its files and memory.
            del job, future, fn, args, kwargs
            job = self._next(worker, finished=True)
        worker.unbind()

    def _next(self, worker: _Worker, *, finished: bool) -> Job | None:
        """The next job for ``worker``, parking it as long as needed; None at shutdown."""
        warm = finished  # it just ran a job: first in line for the next one
        with self._lock:
            if finished:
                self._running.discard(worker)
            while True:
                if not self._jobs and self._watcher is worker:
                    self._watcher = None  # nothing waits: stop watching
                if self._jobs and self._may_start(time.monotonic()):
                    if self._watcher is worker:
                        self._watcher = None
                    started = self._start(worker)
                    self._watch()
                    return started
                if self._shutdown:
                    return None
                if self._jobs and self._watcher is None and not self._loop_watches():
                    self._watcher = worker
                handed = self._park(worker, warm)
                if handed is not None:
                    return handed
                warm = False

    def _park(self, worker: _Worker, warm: bool) -> Job | None:
        """Under the lock: park ``worker`` until a job is handed to it (returned), or it is
        woken to watch, or its watch times out (None).

        Invariant: a worker in ``_idle`` is parked (or about to be) and nobody has released
        its ``wake`` yet; whoever pops it from ``_idle`` releases it, exactly once."""
        watching = self._watcher is worker
        if warm and not watching:
            self._idle.append(worker)
        else:  # a watcher or a thread that has not run lately: the last one to get a job
            self._idle.insert(0, worker)
        self._lock.release()
        try:
            woken = worker.wake.acquire(timeout=self._watch_timeout() if watching else -1)
        finally:
            self._lock.acquire()
        job, worker.job = worker.job, None
        if job is not None:  # handed one by submit, which popped it from _idle
            if self._watcher is worker:
                self._watcher = None
                self._watch()
            if not woken:
                worker.wake.acquire()  # released just after the timeout: re-arm
        elif not woken:
            if worker in self._idle:  # a watch's timeout
                self._idle.remove(worker)
            else:  # popped (and released) by shutdown just after the timeout
                worker.wake.acquire()
        return job

    def _watch_timeout(self) -> float:
        """Under the lock: when a running job may next stop counting as computing."""
        now = time.monotonic()
        soonest = min((w.started for w in self._running), default=now) + self.stall
        return max(soonest - now, self.stall / 10) if soonest > now else self.stall

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            threads = list(self._threads)
            if cancel_futures:
                while self._jobs:
                    future = self._jobs.popleft()[0]
                    if future is not None:
                        future.cancel()
            while self._idle:
                self._idle.pop().wake.release()
            self._watcher = None
            loop, held = self._timer_loop, self._take_held()
        if loop is not None:
            _post_reports(loop, held)
        if wait:
            for thread in threads:
                thread.join()


def run_in_pool(pool: ThreadPool, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run ``fn(*args)`` in ``pool`` as ``sync_to_async`` would, for one hop per request.

    Meant for a request's last hop (the whole sync part of a request): its outcome may be
    held while jobs queue (:meth:`ThreadPool.report`), as all the caller does with it is
    answer the request.

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
    pool.call(run_for_loop, loop, future, context, fn, args, None, True)
    return future


def run_for_loop(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    context: contextvars.Context,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    task_context: list[asyncio.Task[Any]] | None = None,
    may_wait: bool = False,
) -> None:
    """In a pool thread: ``fn(*args)`` in ``context``, its outcome set on ``future`` on
    ``loop``, seeing the loop as ``SyncToAsync.thread_handler`` shows it (``task_context``
    collects the task an ``async_to_sync`` inside starts, for cancellation; ``may_wait``:
    the outcome may be held, see :meth:`ThreadPool.report`)."""
    local = SyncToAsync.threadlocal  # what SyncToAsync.thread_handler sets for AsyncToSync
    local.main_event_loop = loop
    local.main_event_loop_pid = os.getpid()
    local.task_context = task_context
    try:
        result = context.run(_in_context, context, fn, args)
    except BaseException as exc:
        report_to_loop(loop, _settle, future, None, exc, may_wait=may_wait)
        if not isinstance(exc, Exception):
            raise
    else:
        report_to_loop(loop, _settle, future, result, None, may_wait=may_wait)
    finally:
        local.main_event_loop = None


#: ``.pool``: in a pool's thread, that pool
_thread_pool = threading.local()


def report_to_loop(
    loop: asyncio.AbstractEventLoop,
    callback: Callable[..., Any],
    *args: Any,
    may_wait: bool = False,
) -> None:
    """A job's outcome, ``callback(*args)``, to run on ``loop``: through the pool's
    :meth:`ThreadPool.report` in a pool thread, else ``loop.call_soon_threadsafe``."""
    pool: ThreadPool | None = getattr(_thread_pool, "pool", None)
    if pool is None:
        loop.call_soon_threadsafe(callback, *args)
    else:
        pool.report(loop, callback, *args, may_wait=may_wait)


def _post_reports(loop: asyncio.AbstractEventLoop, reports: list[Report]) -> None:
    """Run ``reports`` on ``loop``, in order, from another thread: one wake-up for all."""
    if not reports:
        return
    try:
        if len(reports) == 1:
            callback, args = reports[0]
            loop.call_soon_threadsafe(callback, *args)
        else:
            loop.call_soon_threadsafe(_run_reports, reports)
    except RuntimeError:  # the loop is closed: nobody waits for these outcomes any more
        pass


def _run_reports(reports: list[Report]) -> None:
    for callback, args in reports:
        callback(*args)


def _in_context(context: contextvars.Context, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    # As SyncToAsync does on entering its thread: asgiref Local data set on the loop moves
    # to this thread with the context (asgiref tags it with its thread, since 3.13).
    restore_context(context)
    return fn(*args)


def restore_context(context: contextvars.Context) -> None:
    """asgiref's ``_restore_context``: ``context``'s variables set in the current one (and
    asgiref ``Local`` data moved to this thread), as ``SyncToAsync`` does on each side."""
    if _restore_context is not None:
        _restore_context(context)
        return
    for variable, value in context.items():  # pragma: no cover (asgiref without it)
        try:
            if variable.get() is value:
                continue
        except LookupError:
            pass
        variable.set(value)


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
    if _pool is not None:
        for worker in _pool._workers:  # their /proc files name the parent's threads
            worker.unbind()
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_in_child)
