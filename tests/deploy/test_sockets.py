"""Sockets handed over by someone else: ``--fd`` misuse, systemd socket activation with the
units in ``deploy/systemd/``, and the ``Dockerfile``'s command."""

from __future__ import annotations

import json
import shlex
import signal
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy import harness
from tests.deploy.test_workers import wait_for_workers
from tests.helpers import free_port, require_binary, wait_for_port, wait_for_unix_socket

pytestmark = pytest.mark.slow


def test_fd_that_is_not_a_socket_fails_at_start_with_a_clear_message(tmp_path: Path) -> None:
    # What the seed warns about: "--fd 0" run from a shell, where fd 0 is not a socket.
    not_a_socket = tmp_path / "plain-file"
    not_a_socket.write_text("")
    with not_a_socket.open() as handle:
        result = subprocess.run(
            harness.narrows("--fd", "0", "plain_app:app"),
            cwd=harness.HERE,
            env=harness.env_with_venv(),
            stdin=handle,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "--fd 0 is not a usable socket" in output, output
    assert "Traceback" not in output


def systemd_exec_start(port: int) -> list[str]:
    """``deploy/systemd/narrows.service``'s ExecStart, for the test's project and venv."""
    unit = harness.render(
        "systemd/narrows.service",
        {
            "/srv/mysite/.venv/bin/narrows": str(harness.VENV_BIN / "narrows"),
            "mysite.asgi:application": "tests_app.asgi:application",
        },
    )
    line = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def systemd_listen_stream() -> str:
    socket_unit = (harness.DEPLOY / "systemd/narrows.socket").read_text()
    line = next(x for x in socket_unit.splitlines() if x.startswith("ListenStream="))
    return line.removeprefix("ListenStream=")


def test_systemd_socket_activation_with_the_shipped_units(tmp_path: Path) -> None:
    activate = require_binary("systemd-socket-activate")
    assert systemd_listen_stream() == "127.0.0.1:8000"
    port = free_port()
    # systemd-socket-activate does what systemd does for narrows.socket: it binds, then
    # starts the service's command with the socket as fd 3 and LISTEN_FDS=1.
    args = [activate, "-l", f"127.0.0.1:{port}", *systemd_exec_start(port)]
    env = harness.env_with_venv(DJANGO_SETTINGS_MODULE="tests_app.settings")
    with harness.started(
        args, cwd=harness.HERE, env=env, log=tmp_path / "systemd.log", ready=lambda: None
    ) as proc:
        # The first connection starts the service; it waits in the backlog meanwhile.
        wait_for_port(port)
        data = harness.get_json(port, "/whoami", timeout=60)
        assert data["path"] == "/whoami"
        wait_for_workers(proc, 4)
        assert data["pid"] in harness.children_of(proc.pid)


def test_dockerfile_command_serves(tmp_path: Path) -> None:
    # docker cannot run here; run the image's CMD as the container would, on a free port.
    dockerfile = (harness.DEPLOY / "Dockerfile").read_text()
    cmd_line = next(x for x in dockerfile.splitlines() if x.startswith("CMD "))
    cmd = json.loads(cmd_line.removeprefix("CMD "))
    assert cmd[0] == "narrows"
    port = free_port()
    swaps = {"0.0.0.0": "127.0.0.1", "8000": str(port), "mysite.asgi:application": "plain_app:app"}
    args = [str(harness.VENV_BIN / "narrows"), *(swaps.get(a, a) for a in cmd[1:])]
    with harness.started(
        args, cwd=harness.HERE, log=tmp_path / "docker-cmd.log", ready=lambda: wait_for_port(port)
    ) as proc:
        workers = wait_for_workers(proc, 2)
        status, body = harness.get(port, "/")
        assert status == 200
        assert harness.pid_of(body) in workers


def test_workers_share_a_socket_passed_as_fd_0(tmp_path: Path) -> None:
    # supervisord's fcgi-program with "--workers": the socket arrives as stdin.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    log = tmp_path / "narrows.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            harness.narrows("--fd", "0", "--workers", "2", "plain_app:app"),
            cwd=harness.HERE,
            env=harness.env_with_venv(),
            stdin=listener.fileno(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    listener.close()
    harness.LOGS[proc.pid] = log
    try:
        workers = wait_for_workers(proc, 2)
        pids = {harness.pid_of(harness.get(port, "/slow?seconds=0.05")[1]) for _ in range(10)}
        assert pids <= set(workers)
    finally:
        harness.stop_process(proc)
    assert proc.returncode == 0, log.read_text()


def test_workers_on_a_unix_socket_with_permissions(tmp_path: Path) -> None:
    path = tmp_path / "narrows.sock"
    args = harness.narrows(
        "-u", str(path), "--uds-permissions", "660", "--workers", "2", "plain_app:app"
    )
    with harness.started(
        args,
        cwd=harness.HERE,
        log=tmp_path / "narrows.log",
        ready=lambda: wait_for_unix_socket(str(path)),
    ) as proc:
        workers = wait_for_workers(proc, 2)
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        status, body = harness.get(unix=str(path))
        assert status == 200
        assert harness.pid_of(body) in workers
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    assert not path.exists(), "the supervisor removes the socket file it created"
