"""The seed's topology without supervisord: ``narrows --workers 4`` behind the same nginx
site (``deploy/nginx/narrows.conf``), with the Redis channel layer."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from tests.deploy import harness
from tests.deploy.test_workers import wait_for_workers
from tests.helpers import free_port, require_binary, wait_for_port

pytestmark = [pytest.mark.slow, pytest.mark.needs_nginx, pytest.mark.needs_redis]

WORKERS = 4


@dataclass
class Stack:
    narrows: subprocess.Popen[bytes]
    nginx_port: int

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.nginx_port}{path}"

    def workers(self) -> set[int]:
        return set(harness.children_of(self.narrows.pid))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    redis_bin = require_binary("redis-server")
    nginx_bin = require_binary("nginx", "/usr/sbin/nginx")
    tmp = tmp_path_factory.mktemp("nginx-workers")
    port = free_port()
    with harness.redis_server(redis_bin, tmp) as redis_url:
        env = harness.env_with_venv(
            NARROWS_TEST_REDIS=redis_url, DJANGO_SETTINGS_MODULE="tests_app.settings"
        )
        args = harness.narrows(
            "-b", "127.0.0.1", "-p", str(port), "--workers", str(WORKERS), "--proxy-headers",
            "--access-log", "-", "tests_app.asgi:application",
        )  # fmt: skip
        with (
            harness.started(
                args, cwd=harness.HERE, env=env, log=tmp / "narrows.log",
                ready=lambda: wait_for_port(port, timeout=60),
            ) as proc,
            harness.nginx(nginx_bin, tmp, port, root=tmp) as nginx_port,
        ):  # fmt: skip
            wait_for_workers(proc, WORKERS, timeout=60)
            yield Stack(proc, nginx_port)


def test_http_and_client_address_through_nginx(stack: Stack) -> None:
    data = harness.get_json(stack.nginx_port, "/whoami", headers={"X-Forwarded-For": "203.0.113.7"})
    assert data["client"] == "203.0.113.7"
    assert data["pid"] in stack.workers()


def test_group_message_reaches_clients_on_different_workers(stack: Stack) -> None:
    with ExitStack() as clients:
        by_pid: dict[int, ClientConnection] = {}
        for _ in range(40):  # the kernel hands each connection to whichever worker is free
            ws, hello = clients.enter_context(harness.chat_client(stack.url("/ws/chat/")))
            by_pid.setdefault(harness.greeting_pid(hello), ws)
            if len(by_pid) >= 2:
                break
        assert len(by_pid) >= 2, "all connections landed on one worker"
        (first_pid, first), (second_pid, second) = list(by_pid.items())[:2]
        first.send("across workers")
        assert first.recv(timeout=10) == f"across workers via={first_pid}"
        assert second.recv(timeout=10) == f"across workers via={second_pid}"


def test_sigkilled_worker_is_restarted_and_nothing_fails_afterwards(stack: Stack) -> None:
    before = stack.workers()
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    # The signal lands asynchronously: until the victim is gone it still counts as a worker.
    harness.wait_until(lambda: harness.gone(victim), 15, f"worker {victim} to die")
    workers = wait_for_workers(stack.narrows, WORKERS, timeout=60)
    assert victim not in workers
    statuses = [harness.get(stack.nginx_port, "/")[0] for _ in range(60)]
    assert statuses == [200] * 60
    with harness.chat_client(stack.url("/ws/chat/")) as (_ws, hello):
        assert harness.greeting_pid(hello) in workers


def test_sigterm_drains_and_exits_promptly(stack: Stack) -> None:
    workers = stack.workers()
    with harness.chat_client(stack.url("/ws/chat/")) as (ws, _hello):
        started = time.monotonic()
        stack.narrows.send_signal(signal.SIGTERM)
        assert stack.narrows.wait(15) == 0
        assert time.monotonic() - started < 10
        assert all(harness.gone(pid) for pid in workers)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        # nginx passes the server's close frame on: 1012, service restart.
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
