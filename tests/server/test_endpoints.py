"""Endpoints: Daphne endpoint strings, -b/-p/-u/--fd, several at once, unix socket care."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from narrows.server.config import Config
from narrows.server.endpoints import (
    Endpoint,
    EndpointError,
    bind,
    config_endpoints,
    parse_endpoint,
    systemd_endpoints,
)
from tests.helpers import ROOT, free_port, narrows_process, wait_for_port, wait_for_unix_socket
from tests.server.asgi_hello import app as hello_app
from tests.server.http.fakes import parse_responses
from tests.server.http.serving import request, serving


@pytest.fixture
def tmpdir_short() -> Iterator[str]:
    # unix socket paths must stay short (108 bytes)
    with tempfile.TemporaryDirectory(prefix="nrw") as tmp:
        yield tmp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp:port=8000:interface=127.0.0.1", Endpoint("tcp", host="127.0.0.1", port=8000)),
        ("tcp:8001", Endpoint("tcp", host="0.0.0.0", port=8001)),
        ("tcp:port=8002:interface=\\:\\:1", Endpoint("tcp", host="::1", port=8002)),
        ("unix:/run/x.sock", Endpoint("unix", path="/run/x.sock")),
        ("unix:address=/run/y.sock:mode=660", Endpoint("unix", path="/run/y.sock", mode=0o660)),
        ("fd:fileno=0", Endpoint("fd", fd=0)),
        ("fd:5", Endpoint("fd", fd=5)),
        (
            "ssl:port=8443:privateKey=key.pem:certKey=cert.pem",
            Endpoint("ssl", host="0.0.0.0", port=8443, certfile="cert.pem", keyfile="key.pem"),
        ),
    ],
)
def test_parse_daphne_endpoint_strings(text: str, expected: Endpoint) -> None:
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize("text", ["udp:port=1", "tcp:port=abc", "unix:", "fd:fileno=x", "ssl:443"])
def test_bad_endpoint_strings_are_named(text: str) -> None:
    with pytest.raises(EndpointError) as info:
        parse_endpoint(text)
    assert text.split(":")[0] in str(info.value) or "endpoint" in str(info.value)


def test_default_is_daphnes_127_0_0_1_8000() -> None:
    assert config_endpoints(Config(), environ={}) == [Endpoint("tcp", "127.0.0.1", 8000)]


def test_port_alone_and_host_alone() -> None:
    assert config_endpoints(Config(port=9000), environ={}) == [Endpoint("tcp", "127.0.0.1", 9000)]
    assert config_endpoints(Config(host="0.0.0.0"), environ={}) == [
        Endpoint("tcp", "0.0.0.0", 8000)
    ]


def test_several_endpoints_in_flag_order() -> None:
    config = Config(
        host="127.0.0.1",
        port=1,
        unix_socket="/tmp/a.sock",
        file_descriptors=(0,),
        endpoints=("tcp:port=2:interface=127.0.0.1",),
    )
    kinds = [e.kind for e in config_endpoints(config, environ={})]
    assert kinds == ["tcp", "unix", "fd", "tcp"]


def test_systemd_listen_fds_only_for_this_process() -> None:
    mine = {"LISTEN_FDS": "2", "LISTEN_PID": str(os.getpid())}
    assert systemd_endpoints(mine) == [Endpoint("fd", fd=3), Endpoint("fd", fd=4)]
    assert systemd_endpoints({"LISTEN_FDS": "2", "LISTEN_PID": "1"}) == []


def test_stale_unix_socket_is_replaced(tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "s.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens
    bound = bind(Config(), Endpoint("unix", path=path))
    try:
        assert stat.S_ISSOCK(os.stat(path).st_mode)
    finally:
        bound.sock.close()


def test_live_unix_socket_is_refused(tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "s.sock")
    live = socket.socket(socket.AF_UNIX)
    live.bind(path)
    live.listen()
    try:
        with pytest.raises(EndpointError, match="another server is listening"):
            bind(Config(), Endpoint("unix", path=path))
    finally:
        live.close()


def test_regular_file_is_not_replaced(tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "file")
    with open(path, "w") as handle:
        handle.write("keep me")
    with pytest.raises(EndpointError, match="not a socket"):
        bind(Config(), Endpoint("unix", path=path))
    assert Path(path).read_text() == "keep me"


def test_uds_permissions(tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "p.sock")
    bound = bind(Config(uds_permissions=0o660), Endpoint("unix", path=path))
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    finally:
        bound.sock.close()


def test_fd_that_is_not_a_socket_names_the_fd() -> None:
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(EndpointError, match=f"--fd {read_end} is not"):
            bind(Config(), Endpoint("fd", fd=read_end))
    finally:
        os.close(read_end)
        os.close(write_end)


def test_port_in_use_is_a_clear_error() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(EndpointError, match=f"Cannot listen on 127.0.0.1:{port}"):
            bind(Config(), Endpoint("tcp", "127.0.0.1", port))
    finally:
        holder.close()


async def test_tcp_and_unix_at_once(tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "both.sock")
    port = free_port()
    async with serving(hello_app, host="127.0.0.1", port=port, unix_socket=path) as server:
        assert [b.url for b in server.bound] == [f"http://127.0.0.1:{port}", f"unix:{path}"]
        raw = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        for target in (port, path):
            assert parse_responses(await request(target, raw))[0].body == b"Hello, world!"


def _get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_fd_and_unix_socket_like_supervisord(tmpdir_short: str) -> None:
    """The seed's deployment: one inherited socket (--fd) plus a unix socket per process."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    path = os.path.join(tmpdir_short, "w.sock")
    fd = listener.fileno()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "narrows",
            "--fd",
            str(fd),
            "-u",
            path,
            "tests.server.asgi_hello:app",
        ],
        pass_fds=(fd,),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_unix_socket(path)
        assert _get(port).endswith(b"Hello, world!")
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
        listener.close()
    assert proc.returncode == 0, out
    assert f"Listening on unix:{path}" in out
    assert f"Listening on http://127.0.0.1:{port}" in out


def test_endpoint_flag_and_systemd_socket(tmpdir_short: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    sd_port = listener.getsockname()[1]
    e_port = free_port()
    script = (
        "import os, sys\n"
        f"os.dup2({listener.fileno()}, 3)\n"
        "os.environ['LISTEN_FDS'] = '1'\n"
        "os.environ['LISTEN_PID'] = str(os.getpid())\n"
        "from narrows.server.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            script,
            "-e",
            f"tcp:port={e_port}:interface=127.0.0.1",
            "tests.server.asgi_hello:app",
        ],
        pass_fds=(listener.fileno(),),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(e_port)
        assert _get(e_port).endswith(b"Hello, world!")
        assert _get(sd_port).endswith(b"Hello, world!")
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
        listener.close()


def test_fd_on_a_non_socket_exits_with_clear_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "narrows", "--fd", "0", "tests.server.asgi_hello:app"],
        stdin=subprocess.PIPE,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 1
    assert "--fd 0 is not" in proc.stderr


def test_narrows_process_on_unix_socket(tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "u.sock")
    with narrows_process(["-u", path, "--uds-permissions", "600", "tests.server.asgi_hello:app"]):
        wait_for_unix_socket(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
