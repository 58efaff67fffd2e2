"""``narrows --workers N`` without an external supervisor: the parent binds once, workers
accept on the shared socket; restarts, health checks, signals, ``--max-requests``."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.deploy import harness
from tests.helpers import accepted_connection, free_port, wait_for_port

pytestmark = pytest.mark.slow


@contextmanager
def supervised(
    tmp_path: Path, workers: int, *extra: str, app: str = "plain_app:app"
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    args = harness.narrows("-p", str(port), "--workers", str(workers), *extra, app)
    with harness.started(
        args, cwd=harness.HERE, log=tmp_path / "narrows.log", ready=lambda: wait_for_port(port)
    ) as proc:
        wait_for_workers(proc, workers)
        yield proc, port


def wait_for_workers(proc: subprocess.Popen[bytes], count: int, timeout: float = 30) -> list[int]:
    """Wait until the supervisor has exactly ``count`` workers, all accepting connections."""

    def ready() -> bool:
        workers = harness.children_of(proc.pid)
        return len(workers) == count and set(workers) <= harness.ready_pids(proc)

    harness.wait_until(ready, timeout, f"{count} workers accepting connections")
    return harness.children_of(proc.pid)


def answering_pids(port: int, requests: int = 40, threads: int = 8) -> set[int]:
    """Pids seen over concurrent requests (each on a new connection); all must be 200."""
    pids: set[int] = set()
    errors: list[object] = []

    def client() -> None:
        for _ in range(requests // threads):
            try:
                status, body = harness.get(port, "/slow?seconds=0.05")
                assert status == 200, status
                pids.add(harness.pid_of(body))
            except Exception as exc:
                errors.append(exc)

    pool = [threading.Thread(target=client) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []
    return pids


class Load:
    """Requests on fresh connections, one after another, until stopped; counts failures."""

    def __init__(self, port: int) -> None:
        self.port, self.ok, self.failures = port, 0, []  # type: ignore[var-annotated]
        self.pids: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, body = harness.get(self.port, "/", timeout=10)
                if status == 200:
                    self.ok += 1
                    self.pids.append(harness.pid_of(body))
                else:
                    self.failures.append(status)
            except Exception as exc:
                self.failures.append(repr(exc))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_workers_share_one_port(tmp_path: Path) -> None:
    with supervised(tmp_path, 4) as (proc, port):
        workers = set(harness.children_of(proc.pid))
        assert len(workers) == 4
        seen = answering_pids(port, requests=80)
        assert seen <= workers
        assert len(seen) >= 2, "the kernel should spread concurrent connections"


def test_dead_worker_is_restarted(tmp_path: Path) -> None:
    with supervised(tmp_path, 2) as (proc, port):
        victim = harness.children_of(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        harness.wait_until(
            lambda: (
                victim not in harness.children_of(proc.pid)
                and len(harness.children_of(proc.pid)) == 2
            ),
            30,
            "replacement worker",
        )
        time.sleep(0.5)
        assert answering_pids(port) <= set(harness.children_of(proc.pid))
    assert "died unexpectedly" in (tmp_path / "narrows.log").read_text()


def test_sighup_rolling_restart_refuses_nothing(tmp_path: Path) -> None:
    with supervised(tmp_path, 2) as (proc, port):
        old = set(harness.children_of(proc.pid))
        with Load(port) as load:
            time.sleep(0.3)
            proc.send_signal(signal.SIGHUP)
            harness.wait_until(
                lambda: (
                    not old & set(harness.children_of(proc.pid))
                    and len(harness.children_of(proc.pid)) == 2
                ),
                60,
                "all workers replaced",
            )
            # Answers from now on come from new workers (but for one that may have been
            # under way, from an old worker, as the last one stopped).
            mark = len(load.pids)
            harness.wait_until(lambda: len(load.pids) >= mark + 6, 30, "answers after the restart")
        new = set(harness.children_of(proc.pid))
        assert load.failures == []
        assert load.ok > 10
        assert set(load.pids[mark + 1 :]) <= new
        assert proc.poll() is None


def test_ttin_ttou_change_the_worker_count(tmp_path: Path) -> None:
    with supervised(tmp_path, 2) as (proc, port):
        proc.send_signal(signal.SIGTTIN)
        wait_for_workers(proc, 3)
        # One at a time: the kernel merges a signal sent again before the first is handled.
        proc.send_signal(signal.SIGTTOU)
        wait_for_workers(proc, 2)
        proc.send_signal(signal.SIGTTOU)
        wait_for_workers(proc, 1)
        proc.send_signal(signal.SIGTTOU)  # never fewer than one
        log = harness.LOGS[proc.pid]
        harness.wait_until(
            lambda: log.read_text().count("SIGTTOU: now 1 workers") == 2,
            30,
            "third SIGTTOU handled",
        )
        assert "SIGTTOU: now 0 workers" not in log.read_text()
        assert len(harness.children_of(proc.pid)) == 1
        assert harness.get(port, "/")[0] == 200


def test_max_requests_recycles_workers(tmp_path: Path) -> None:
    with supervised(tmp_path, 2, "--max-requests", "10", "--max-requests-jitter", "5") as (
        proc,
        port,
    ):
        first = set(harness.children_of(proc.pid))
        seen: set[int] = set()
        deadline = time.monotonic() + 30
        while not seen - first and time.monotonic() < deadline:
            status, body = harness.get(port, "/")
            assert status == 200
            seen.add(harness.pid_of(body))
            time.sleep(0.02)
        assert seen - first, "no worker was ever recycled"
        harness.wait_until(
            lambda: bool(first - set(harness.children_of(proc.pid))), 30, "a recycled worker exit"
        )
        assert len(harness.children_of(proc.pid)) >= 2
    assert "(--max-requests " in (tmp_path / "narrows.log").read_text()


def test_hung_worker_is_killed_and_replaced(tmp_path: Path) -> None:
    with supervised(tmp_path, 2, "--worker-healthcheck-timeout", "2") as (proc, port):
        first = set(harness.children_of(proc.pid))
        with pytest.raises((OSError, http.client.HTTPException)):  # dies with the worker
            harness.get(port, "/hang", timeout=20)
        # The killed worker may not be reaped yet: wait for it to go, then for its successor.
        harness.wait_until(
            lambda: not first <= set(harness.children_of(proc.pid)), 30, "the hung worker gone"
        )
        workers = wait_for_workers(proc, 2)
        assert len(first - set(workers)) == 1, "exactly the hung worker is replaced"
        assert all(harness.get(port, "/")[0] == 200 for _ in range(20))
    assert "did not send a heartbeat within 2.0s" in (tmp_path / "narrows.log").read_text()


def test_ctrl_c_drains_in_flight_requests_and_exits_0(tmp_path: Path) -> None:
    port = free_port()
    args = harness.narrows("-p", str(port), "--workers", "2", "plain_app:app")
    with harness.started(
        args,
        cwd=harness.HERE,
        log=tmp_path / "narrows.log",
        ready=lambda: wait_for_port(port),
        new_session=True,
    ) as proc:
        workers = wait_for_workers(proc, 2)
        # A connection a worker has accepted (one answer on it), its next request sent
        # before the signal whatever the load on the machine: the worker must answer it.
        conn = accepted_connection(port, timeout=30)
        conn.request("GET", "/slow?seconds=2")
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl+C in a terminal does
        response = conn.getresponse()
        result = (response.status, response.read())
        conn.close()
        assert proc.wait(20) == 0
        assert result[0] == 200, result
        assert all(harness.gone(pid) for pid in workers)
        with pytest.raises(OSError):
            harness.get(port, "/", timeout=2)


def test_app_that_cannot_start_exits_1(tmp_path: Path) -> None:
    result = subprocess.run(
        harness.narrows("-p", str(free_port()), "--workers", "2", "no_such_module:app"),
        cwd=harness.HERE,
        env=harness.env_with_venv(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "no_such_module" in output
    assert "Workers cannot start" in output


def test_workers_exit_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    with supervised(tmp_path, 2) as (proc, _port):
        workers = harness.children_of(proc.pid)
        proc.kill()  # SIGKILL: no chance to stop them; they must notice on their own
        proc.wait()
        harness.wait_until(lambda: all(harness.gone(pid) for pid in workers), 15, "no orphans")
    assert "Supervisor went away" in (tmp_path / "narrows.log").read_text()


def test_second_sigterm_stops_draining(tmp_path: Path) -> None:
    with supervised(tmp_path, 2, "--graceful-timeout", "60") as (proc, port):
        # On a connection a worker has accepted, sent before the signal.
        conn = accepted_connection(port, timeout=60)
        conn.request("GET", "/slow?seconds=50")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(1)
        assert proc.poll() is None, "still draining the slow request"
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        assert time.monotonic() - started < 12
        # the slow request was cut short, not answered
        with pytest.raises((OSError, http.client.HTTPException)):
            conn.getresponse().read()
        conn.close()
    assert "Second shutdown signal" in (tmp_path / "narrows.log").read_text()
