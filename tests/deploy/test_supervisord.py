"""The seed's production topology, for real: supervisord's ``fcgi-program`` (one TCP socket
as fd 0 to four narrows processes, each also on its own unix socket) behind nginx, with a
Redis channel layer. The files run are ``deploy/supervisor/narrows.conf`` and
``deploy/nginx/narrows.conf``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from tests.deploy import harness
from tests.helpers import free_port, require_binary, wait_for_unix_socket

pytestmark = [pytest.mark.slow, pytest.mark.needs_nginx, pytest.mark.needs_redis]

NUMPROCS = 4

SUPERVISORD_MAIN = """\
[unix_http_server]
file={tmp}/supervisor.sock

[supervisord]
logfile={tmp}/supervisord.log
pidfile={tmp}/supervisord.pid
childlogdir={tmp}
nodaemon=true

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{tmp}/supervisor.sock

[include]
files = {program}
"""


@dataclass
class Stack:
    tmp: Path
    rundir: Path
    backend_port: int
    nginx_port: int

    def ctl(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(harness.VENV_BIN / "supervisorctl"),
                "-c",
                str(self.tmp / "supervisord.conf"),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def pid(self, num: int) -> int:
        return int(self.ctl("pid", f"narrows:narrows{num}").stdout.strip() or 0)

    def nginx_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.nginx_port}{path}"

    def sock(self, num: int) -> str:
        return str(self.rundir / f"narrows{num}.sock")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    redis_bin = require_binary("redis-server")
    nginx_bin = require_binary("nginx", "/usr/sbin/nginx")
    tmp = tmp_path_factory.mktemp("supervisord")
    rundir = tmp / "run"
    rundir.mkdir()
    backend_port = free_port()
    program = tmp / "narrows-program.conf"
    program.write_text(
        harness.render(
            "supervisor/narrows.conf",
            {
                "tcp://127.0.0.1:8000": f"tcp://127.0.0.1:{backend_port}",
                "directory=/srv/mysite": f"directory={harness.HERE}",
                "/run/narrows/": f"{rundir}/",
                "mysite.asgi:application": "tests_app.asgi:application",
                "mysite.settings": "tests_app.settings",
                "/var/log/narrows/narrows.log": str(tmp / "narrows.log"),
            },
        )
    )
    conf = tmp / "supervisord.conf"
    conf.write_text(SUPERVISORD_MAIN.format(tmp=tmp, program=program))
    with harness.redis_server(redis_bin, tmp) as redis_url:
        env = harness.env_with_venv(NARROWS_TEST_REDIS=redis_url)
        args = [str(harness.VENV_BIN / "supervisord"), "-c", str(conf)]
        sockets = [str(rundir / f"narrows{n}.sock") for n in range(NUMPROCS)]

        def ready() -> None:
            for path in sockets:
                wait_for_unix_socket(path, timeout=60)

        try:
            with (
                harness.started(args, cwd=tmp, env=env, log=tmp / "supervisord.out", ready=ready),
                harness.nginx(nginx_bin, tmp, backend_port, root=tmp) as nginx_port,
            ):
                yield Stack(tmp, rundir, backend_port, nginx_port)
        except BaseException:
            log = tmp / "narrows.log"
            if log.exists():
                print("--- narrows.log ---\n" + log.read_text(errors="replace")[-6000:])
            raise


def test_http_through_nginx_reaches_django(stack: Stack) -> None:
    pids = set()
    for _ in range(20):
        data = harness.get_json(stack.nginx_port, "/whoami")
        assert data["path"] == "/whoami"
        pids.add(data["pid"])
    assert pids <= {stack.pid(n) for n in range(NUMPROCS)}


def test_every_process_also_serves_its_own_unix_socket(stack: Stack) -> None:
    pids = {harness.get_json(unix=stack.sock(n))["pid"] for n in range(NUMPROCS)}
    assert pids == {stack.pid(n) for n in range(NUMPROCS)}
    assert len(pids) == NUMPROCS


def test_client_address_comes_from_proxy_headers(stack: Stack) -> None:
    # nginx appends its peer ($remote_addr: 127.0.0.1 here) to what the client sent;
    # narrows trusts nginx (a 127.0.0.1 peer) and takes the rightmost address it does not
    # trust: the client's own, as nginx's real_ip module would.
    data = harness.get_json(stack.nginx_port, "/", headers={"X-Forwarded-For": "203.0.113.7"})
    assert data["client"] == "203.0.113.7"
    data = harness.get_json(stack.nginx_port, "/")
    assert data["client"] == "127.0.0.1"
    # A unix-socket peer is a local proxy too: its headers are believed.
    data = harness.get_json(unix=stack.sock(0), headers={"X-Forwarded-For": "198.51.100.9"})
    assert data["client"] == "198.51.100.9"


def test_group_message_reaches_clients_on_different_processes(stack: Stack) -> None:
    with ExitStack() as clients:
        a, hello_a = clients.enter_context(harness.chat_client(unix=stack.sock(0)))
        b, hello_b = clients.enter_context(harness.chat_client(unix=stack.sock(1)))
        c, hello_c = clients.enter_context(harness.chat_client(stack.nginx_url("/ws/chat/")))
        pids = [harness.greeting_pid(h) for h in (hello_a, hello_b, hello_c)]
        assert pids[0] != pids[1]
        for sender, text in ((a, "hi from a"), (c, "hi from c")):
            sender.send(text)
            for ws, pid in zip((a, b, c), pids, strict=True):
                assert ws.recv(timeout=10) == f"{text} via={pid}"


def test_websocket_through_nginx_sees_forwarded_client(stack: Stack) -> None:
    headers = {"X-Forwarded-For": "203.0.113.8"}
    with harness.chat_client(stack.nginx_url("/ws/chat/"), headers=headers) as (_ws, hello):
        assert hello.endswith("client=203.0.113.8")


def test_sigkilled_process_is_restarted_and_nothing_fails_afterwards(stack: Stack) -> None:
    victim = stack.pid(2)
    os.kill(victim, signal.SIGKILL)
    harness.wait_until(lambda: stack.pid(2) not in (0, victim), 30, "narrows2 restarted")
    # The restarted process replaced the stale unix socket file the killed one left.
    wait_for_unix_socket(stack.sock(2), timeout=30)
    assert harness.get_json(unix=stack.sock(2))["pid"] == stack.pid(2)
    statuses = [harness.get(stack.nginx_port, "/")[0] for _ in range(60)]
    assert statuses == [200] * 60
    with harness.chat_client(stack.nginx_url("/ws/chat/")) as (_ws, hello):
        assert harness.greeting_pid(hello) in {stack.pid(n) for n in range(NUMPROCS)}


def test_supervisorctl_stop_all_is_prompt(stack: Stack) -> None:
    pids = [stack.pid(n) for n in range(NUMPROCS)]
    with harness.chat_client(unix=stack.sock(3)) as (ws, _hello):
        started = time.monotonic()
        result = stack.ctl("stop", "all")
        elapsed = time.monotonic() - started
        assert result.returncode == 0, result.stdout + result.stderr
        assert elapsed < 10, f"supervisorctl stop all took {elapsed:.1f}s"
        assert all(harness.gone(pid) for pid in pids)
        # The open WebSocket was closed by the server with 1012 (service restart).
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
