"""narrows.asgi.ASGIHandler in process, driven by asgiref's ApplicationCommunicator."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.local import Local
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.test import AsyncRequestFactory
from django.urls import path

from narrows.asgi import ASGIHandler, ASGIRequest, get_asgi_application
from narrows.asgi.pool import DEFAULT_THREADS, ThreadPool, run_in_pool, thread_count
from narrows.asgi.threads import SerialExecutor

SOURCE = Path(__file__).read_bytes()
closed = threading.Event()
streamed: list[int] = []


def endless(request: Any) -> StreamingHttpResponse:
    def parts() -> Iterator[bytes]:
        try:
            for n in range(10_000):
                streamed.append(n)
                yield b"x" * 1000
        finally:
            closed.set()

    return StreamingHttpResponse(parts())


def a_file(request: Any) -> FileResponse:
    return FileResponse(open(__file__, "rb"))


def thread_name(request: Any) -> HttpResponse:
    return HttpResponse(threading.current_thread().name)


def loop_of_async_to_sync(request: Any) -> HttpResponse:
    async def running_loop() -> int:
        return id(asyncio.get_running_loop())

    return HttpResponse(str(async_to_sync(running_loop)()))


marker = Local()


def reads_local(request: Any) -> HttpResponse:
    return HttpResponse(getattr(marker, "value", "unset"))


class SetsLocal:
    """ASGI middleware around the handler: asgiref Local data set on the loop."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        marker.value = "set on the loop"
        await self.app(scope, receive, send)


urlpatterns = [
    path("local/", reads_local),
    path("loop/", loop_of_async_to_sync),
    path("endless/", endless),
    path("file/", a_file),
    path("thread/", thread_name),
]


def scope(target: str, **extra: Any) -> dict[str, Any]:
    base = AsyncRequestFactory()._base_scope(path=target)
    base.update(extra)
    return base


@pytest.fixture(autouse=True)
def urls(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.MIDDLEWARE = []


def test_drop_in() -> None:
    handler = get_asgi_application()
    assert isinstance(handler, DjangoASGIHandler)
    assert handler.request_class is ASGIRequest


@pytest.mark.parametrize(
    "headers",
    [
        [(b"cookie", b"a=abc"), (b"cookie", b"b=def;"), (b"cookie", b"c=ghi; ")],
        [(b"content-type", b"text/plain"), (b"content-type", b"text/html")],
        [(b"content-length", b"10"), (b"content-length", b"20"), (b"x-a", b"1"), (b"x-a", b"2")],
    ],
    ids=["cookies", "content-type", "content-length"],
)
def test_repeated_headers_are_joined_as_the_installed_djangos_request_joins_them(
    headers: list[tuple[bytes, bytes]],
) -> None:
    from django.core.handlers.asgi import ASGIRequest as DjangoASGIRequest

    scope = AsyncRequestFactory()._base_scope(method="POST", path="/")  # type: ignore[attr-defined]
    scope["headers"] = headers
    ours = ASGIRequest(scope, io.BytesIO(b""))
    django_s = DjangoASGIRequest(scope, io.BytesIO(b""))
    keys = {k for k in django_s.META if k.startswith(("HTTP_", "CONTENT_"))}
    assert keys
    assert {k: ours.META[k] for k in keys} == {k: django_s.META[k] for k in keys}
    assert ours.COOKIES == django_s.COOKIES


async def test_file_response_goes_out_by_pathsend() -> None:
    extensions = {"http.response.pathsend": {}}
    communicator = ApplicationCommunicator(ASGIHandler(), scope("/file/", extensions=extensions))
    await communicator.send_input({"type": "http.request"})
    start = await communicator.receive_output()
    assert start["status"] == 200
    size = str(len(SOURCE)).encode()
    assert (b"Content-Length", size) in start["headers"]
    assert await communicator.receive_output() == {
        "type": "http.response.pathsend",
        "path": __file__,
    }
    await communicator.wait()


async def test_without_the_extension_the_file_is_streamed() -> None:
    communicator = ApplicationCommunicator(ASGIHandler(), scope("/file/"))
    await communicator.send_input({"type": "http.request"})
    assert (await communicator.receive_output())["status"] == 200
    body = b""
    while True:
        message = await communicator.receive_output()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    assert body == SOURCE
    await communicator.wait()


async def test_sync_stream_is_paced_and_stops_when_the_client_leaves() -> None:
    """A send() that suspends (a server over its high-water mark) holds the generator back;
    after http.disconnect the generator is closed, not run to its end."""
    closed.clear()
    streamed.clear()
    sent: list[dict[str, Any]] = []
    may_send = asyncio.Event()
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "http.request"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if len(sent) > 3:  # the client stops reading after three chunks
            await may_send.wait()

    task = asyncio.create_task(ASGIHandler()(scope("/endless/"), inbox.get, send))
    while len(sent) < 4:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert len(streamed) <= 5, len(streamed)  # not run ahead of the client
    await inbox.put({"type": "http.disconnect"})
    await asyncio.sleep(0.05)
    may_send.set()
    await asyncio.wait_for(task, 5)
    assert await asyncio.to_thread(closed.wait, 5)
    assert len(streamed) <= 6, len(streamed)


async def test_sync_view_runs_on_a_pool_thread() -> None:
    communicator = ApplicationCommunicator(ASGIHandler(), scope("/thread/"))
    await communicator.send_input({"type": "http.request"})
    await communicator.receive_output()
    assert (await communicator.receive_output())["body"].startswith(b"narrows-django-")
    await communicator.wait()


def test_thread_count_sources(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NARROWS_THREADS", raising=False)
    monkeypatch.delenv("ASGI_THREADS", raising=False)
    assert thread_count() == DEFAULT_THREADS
    monkeypatch.setenv("ASGI_THREADS", "3")
    assert thread_count() == 3
    settings.NARROWS_THREADS = 5
    assert thread_count() == 5
    monkeypatch.setenv("NARROWS_THREADS", "7")  # what --threads sets
    assert thread_count() == 7
    monkeypatch.setenv("NARROWS_THREADS", "zero")
    with pytest.raises(ImproperlyConfigured, match="positive integer, got 'zero'"):
        thread_count()


def test_pool_is_bounded_and_serial_executor_keeps_order() -> None:
    pool = ThreadPool(2, name="t")
    release = threading.Event()
    running: list[str] = []

    def block() -> None:
        running.append(threading.current_thread().name)
        release.wait(5)

    futures = [pool.submit(block) for _ in range(4)]
    deadline = time.monotonic() + 5
    while len(running) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    threading.Event().wait(0.2)  # time for a third to start, were the pool not bounded
    assert len(running) == 2  # the other two wait their turn
    release.set()
    for future in futures:
        future.result(5)
    serial = SerialExecutor(pool)
    order: list[int] = []
    results = [serial.submit(order.append, n) for n in range(50)]
    for future in results:
        future.result(5)
    assert order == list(range(50))
    pool.shutdown()


async def test_async_to_sync_in_a_sync_view_runs_on_the_servers_loop() -> None:
    """As under Django's handler: channel layers and consumers share the server's loop."""
    communicator = ApplicationCommunicator(ASGIHandler(), scope("/loop/"))
    await communicator.send_input({"type": "http.request"})
    await communicator.receive_output()
    body = (await communicator.receive_output())["body"]
    assert body == str(id(asyncio.get_running_loop())).encode()
    await communicator.wait()


async def test_asgiref_local_set_on_the_loop_is_seen_in_the_sync_view() -> None:
    """As through sync_to_async: contextvar-backed Local data follows the request."""
    communicator = ApplicationCommunicator(SetsLocal(ASGIHandler()), scope("/local/"))
    await communicator.send_input({"type": "http.request"})
    await communicator.receive_output()
    assert (await communicator.receive_output())["body"] == b"set on the loop"
    await communicator.wait()


def _busy(seconds: float) -> None:
    deadline = time.thread_time() + seconds
    while time.thread_time() < deadline:
        pass


class _Concurrency:
    """How many jobs are inside ``with probe:`` at once; ``peak``: the most seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self._lock:
            self._now += 1
            self.peak = max(self.peak, self._now)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._now -= 1


class _WaitingJob:
    """A job that notes when each run starts, then waits for ``release`` (a job that waits,
    not one that computes)."""

    def __init__(self) -> None:
        self.started: list[float] = []
        self.release = threading.Event()

    def __call__(self) -> None:
        self.started.append(time.monotonic())
        self.release.wait(10)


async def _parked(pool: ThreadPool) -> None:
    """Every thread of ``pool`` made and parked (idle ones are what arm the loop's timer)."""
    await run_in_pool(pool, lambda: None)
    deadline = time.monotonic() + 5
    while len(pool._idle) < pool.size and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    assert len(pool._idle) == pool.size


def test_pool_computes_one_at_a_time_and_overlaps_waits() -> None:
    # stall 0.1 s: a 10 ms job seen "waiting" would have to be starved of CPU by another
    # process for 90% of that time (which does count as waiting).
    pool = ThreadPool(4, name="admission", stall=0.1)
    probe = _Concurrency()

    def compute() -> None:
        with probe:
            _busy(0.01)  # 10 ms of CPU: never "waiting", never "long"

    for future in [pool.submit(compute) for _ in range(12)]:
        future.result(10)
    assert probe.peak == 1  # computing jobs run one at a time, however long they run
    pool.shutdown()

    waiting = ThreadPool(4, name="waits", stall=0.05)
    wait = _WaitingJob()

    waiting.submit(lambda: None).result(5)
    time.sleep(0.1)  # every thread idle, none watching: the next jobs must find one
    submitted = time.monotonic()
    futures = [waiting.submit(wait) for _ in range(6)]
    deadline = time.monotonic() + 5
    while len(wait.started) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(wait.started) == 4  # one, then more once it is seen waiting, up to the size
    # The second waited for a stall (0.05 s) of the first, which started after submitted.
    assert sorted(wait.started)[1] - submitted >= 0.05
    time.sleep(0.2)
    assert len(wait.started) == 4  # bounded
    wait.release.set()
    for future in futures:
        future.result(10)
    waiting.shutdown()


def test_a_long_computing_job_does_not_hold_up_short_ones() -> None:
    pool = ThreadPool(2, name="long", stall=0.005, long=0.02)
    long_job = pool.submit(_busy, 0.5)
    time.sleep(0.01)
    started = time.monotonic()
    pool.submit(lambda: None).result(5)
    # It starts once the long job has used 20 ms of CPU, not when it ends (not done yet).
    assert time.monotonic() - started < 5
    assert not long_job.done()
    long_job.result(10)
    pool.shutdown()


def test_pool_threads_are_reused_most_recent_first() -> None:
    pool = ThreadPool(8, name="lifo")
    names = set()
    for _ in range(50):
        names.add(pool.submit(lambda: threading.current_thread().name).result(5))
        time.sleep(0.001)
    assert len(names) == 1, names  # the warm thread, every time
    pool.shutdown()


def test_pool_runs_every_job_once_under_mixed_load() -> None:
    """Submitters racing hand-offs, watches and stalls: nothing lost, run twice or stuck."""
    pool = ThreadPool(4, name="mixed", stall=0.002, long=0.004)
    ran: list[int] = []
    probe = _Concurrency()

    def job(n: int) -> int:
        with probe:
            kind = n % 4
            if kind == 1:
                time.sleep(0.003)
            elif kind == 2:
                _busy(0.001)
            elif kind == 3:
                _busy(0.006)
        ran.append(n)
        return n

    futures: list[Any] = []

    def submit(start: int) -> None:
        for n in range(start, start + 100):
            futures.append(pool.submit(job, n))
            if n % 7 == 0:
                time.sleep(0.002)

    submitters = [threading.Thread(target=submit, args=(k * 100,)) for k in range(4)]
    for thread in submitters:
        thread.start()
    for thread in submitters:
        thread.join()
    assert sorted(f.result(20) for f in futures) == list(range(400))
    assert sorted(ran) == list(range(400))
    assert probe.peak <= 4
    pool.shutdown()


@pytest.mark.skipif(
    not os.path.exists(f"/proc/self/task/{threading.get_native_id()}/schedstat"),
    reason="no /proc schedstat (Linux only): the CPU clock decides",
)
def test_cpu_starved_jobs_are_not_taken_for_waiting_ones() -> None:
    """Other processes taking the CPUs slow a computing job down (it is runnable, not
    waiting): no second job starts beside it for that."""
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        time.sleep(0.2)
        pool = ThreadPool(8, name="starved", stall=0.005)
        probe = _Concurrency()

        def compute() -> None:
            with probe:
                _busy(0.005)

        for future in [pool.submit(compute) for _ in range(60)]:
            future.result(60)
        pool.shutdown()
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert probe.peak <= 2, probe.peak  # 5 with the CPU clock alone, on 2 cores


async def test_jobs_from_an_event_loop_are_rechecked_by_its_timer() -> None:
    """Submitted from a running loop, waiting jobs still free their slots after a stall and
    computing ones still run one at a time, the re-check armed as a timer of that loop
    rather than an idle thread woken to watch (a thread woken every stall takes the GIL from
    the computing job)."""
    # A stall long enough that a loop on a busy machine is not late by as much (a loop late
    # by more than the stall hands watching to a thread, by design).
    pool = ThreadPool(4, name="loop-watch", stall=0.25, long=1.0)
    loop = asyncio.get_running_loop()
    wait = _WaitingJob()

    await _parked(pool)
    submitted = time.monotonic()
    futures = [loop.run_in_executor(pool, wait) for _ in range(6)]
    deadline = time.monotonic() + 5
    timer_armed = False
    while len(wait.started) < 4 and time.monotonic() < deadline:
        # The loop's timer watches (a thread may still step in when none is idle to be
        # handed a job at the timer, or when the loop is late: the fallback).
        timer_armed = timer_armed or pool._timer_loop is loop
        await asyncio.sleep(0.005)
    assert timer_armed
    assert len(wait.started) == 4  # one, then more once each is seen waiting, up to the size
    # The second waited for a stall (0.25 s) of the first, which started after submitted.
    assert sorted(wait.started)[1] - submitted >= 0.25
    wait.release.set()
    await asyncio.gather(*futures)

    probe = _Concurrency()

    def compute() -> None:
        with probe:
            _busy(0.3)  # 300 ms of CPU, past the stall: computing, neither waiting nor long

    await asyncio.gather(*(loop.run_in_executor(pool, compute) for _ in range(6)))
    assert probe.peak == 1
    pool.shutdown()


async def test_rechecks_back_off_while_the_running_job_computes() -> None:
    """A re-check that finds the running job computing doubles the next one's delay up to
    ``hold`` (each one takes the GIL from that job); a job that then waits is still found
    out within ``hold``, and the queue behind it starts."""
    pool = ThreadPool(4, name="backoff", stall=0.01, long=10.0, hold=0.16)
    loop = asyncio.get_running_loop()
    await _parked(pool)
    fired: list[float] = []
    on_timer = pool._on_timer

    def counting(token: object) -> None:
        fired.append(time.monotonic())
        on_timer(token)

    pool._on_timer = counting  # type: ignore[method-assign]
    wait = _WaitingJob()
    computing = loop.run_in_executor(pool, _busy, 0.8)  # holds the slot: computing
    waiting = [loop.run_in_executor(pool, wait) for _ in range(2)]  # queued behind it
    await asyncio.wait_for(computing, 30)
    during = len(fired)
    # Every 10 ms that is 80 re-checks; backing off to 160 ms, about ten.
    assert 1 <= during <= 20, during
    deadline = time.monotonic() + 5
    while len(wait.started) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    assert len(wait.started) == 2  # the second started once the first was seen waiting
    assert wait.started[1] - wait.started[0] < 0.16 + 0.5  # within hold (and some slack)
    wait.release.set()
    await asyncio.gather(*waiting)
    pool.shutdown()


def test_a_stopped_loop_hands_watching_back_to_a_thread() -> None:
    # A stall far longer than asyncio.run's teardown, during which the loop still runs
    # its timers: the loop is surely closed before its re-check is due.
    pool = ThreadPool(3, name="loop-gone", stall=0.5)
    wait = _WaitingJob()

    async def submit_and_leave() -> None:
        pool.submit(wait)  # runs at once
        pool.submit(wait)  # waits for the first to be seen waiting: the loop's timer arms

    pool.submit(lambda: None).result(5)
    submitted = time.monotonic()
    asyncio.run(submit_and_leave())  # the loop is closed before its timer fires
    # The loop that watched is gone; a parked thread may already have taken over, and the
    # next submission hands watching to a thread at the latest: no queued job starves.
    pool.submit(wait)  # from a thread
    deadline = time.monotonic() + 5
    while len(wait.started) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(wait.started) == 3
    # The second waited for a stall (0.5 s) of the first, which started after submitted.
    assert sorted(wait.started)[1] - submitted >= 0.5
    wait.release.set()
    pool.shutdown()


def _count_posts(loop: asyncio.AbstractEventLoop) -> list[int]:
    """Count the loop's ``call_soon_threadsafe`` calls (each one wakes the loop)."""
    posts = [0]
    original = loop.call_soon_threadsafe

    def counting(*args: Any, **kwargs: Any) -> Any:
        posts[0] += 1
        return original(*args, **kwargs)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    return posts


def _computed(n: int) -> int:
    _busy(0.002)
    return n


async def test_outcomes_of_jobs_that_others_queue_behind_share_one_wake_up() -> None:
    """While jobs queue, finished jobs' outcomes are held and reach the loop together:
    each wake-up of the loop takes the GIL from the thread computing the next job."""
    pool = ThreadPool(4, name="reports", stall=2.0, long=10.0)
    loop = asyncio.get_running_loop()
    await _parked(pool)
    posts = _count_posts(loop)
    results = await asyncio.gather(*(run_in_pool(pool, _computed, n) for n in range(20)))
    assert results == list(range(20))  # every outcome, each to its own caller
    assert posts[0] <= 2, posts  # one wake-up for all (20 without holding)
    pool.shutdown()

    # No idle thread, so no timer of the loop to bound the wait: nothing is held.
    single = ThreadPool(1, name="no-timer")
    await _parked(single)
    posts[0] = 0
    results = await asyncio.gather(*(run_in_pool(single, _computed, n) for n in range(20)))
    assert results == list(range(20))
    assert posts[0] == 20, posts
    single.shutdown()


async def test_a_held_outcome_waits_at_most_a_stall() -> None:
    """A short job's outcome, held because others queue behind it, reaches the loop by its
    re-check timer while the next job still computes, not when that job ends."""
    pool = ThreadPool(2, name="held", stall=0.1, long=10.0)
    await _parked(pool)
    started = time.monotonic()
    short = run_in_pool(pool, lambda: "short")
    long_job = run_in_pool(pool, _busy, 1.5)  # computing: it keeps the slot throughout
    queued = run_in_pool(pool, lambda: "queued")
    assert await asyncio.wait_for(short, 5) == "short"
    assert time.monotonic() - started < 1.0  # by the timer (0.1 s), not after the long job
    assert not long_job.done()
    await asyncio.wait_for(long_job, 10)
    assert await asyncio.wait_for(queued, 5) == "queued"
    pool.shutdown()


async def test_shutdown_delivers_held_outcomes() -> None:
    """An outcome held for a timer that is far off still reaches the loop at shutdown."""
    pool = ThreadPool(2, name="held-shutdown", stall=30.0, long=60.0)
    await _parked(pool)
    gate, release = threading.Event(), threading.Event()
    first = run_in_pool(pool, gate.wait, 10)
    blocker = run_in_pool(pool, release.wait, 10)  # "computing" for 30 s: holds the slot
    queued = run_in_pool(pool, lambda: "queued")
    gate.set()  # the first job ends with two queued behind it: its outcome is held
    await asyncio.sleep(0.3)
    assert not first.done()  # its timer is 30 s away and nothing else was posted
    pool.shutdown(wait=False)
    assert await asyncio.wait_for(first, 5) is True
    release.set()
    assert await asyncio.wait_for(blocker, 10) is True
    assert await asyncio.wait_for(queued, 10) == "queued"


async def test_held_outcomes_stay_with_their_own_loop() -> None:
    """An outcome reported at once to another event loop does not carry this loop's held
    ones along: they run on their own loop, at its timer or at shutdown."""
    pool = ThreadPool(2, name="held-loops", stall=30.0, long=60.0)
    await _parked(pool)
    gate, release = threading.Event(), threading.Event()
    first = run_in_pool(pool, gate.wait, 10)
    blocker = run_in_pool(pool, release.wait, 10)  # holds the compute slot
    queued = run_in_pool(pool, lambda: "queued")
    gate.set()  # the first job ends with others queued behind it: its outcome is held
    await asyncio.sleep(0.3)
    assert not first.done()

    ran_on: list[asyncio.AbstractEventLoop] = []

    async def other_loop() -> None:
        done = asyncio.get_running_loop().create_future()
        other = asyncio.get_running_loop()

        def note() -> None:
            ran_on.append(asyncio.get_running_loop())
            done.set_result(None)

        pool.report(other, note, may_wait=False)
        await asyncio.wait_for(done, 5)

    await asyncio.to_thread(asyncio.run, other_loop())
    assert len(ran_on) == 1 and ran_on[0] is not asyncio.get_running_loop()
    await asyncio.sleep(0.1)
    assert not first.done()  # still held for this loop, not run on the other one
    pool.shutdown(wait=False)
    assert await asyncio.wait_for(first, 5) is True
    release.set()
    assert await asyncio.wait_for(blocker, 10) is True
    assert await asyncio.wait_for(queued, 10) == "queued"
