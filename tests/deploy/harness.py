"""Running the real deployment parts in a temporary directory: redis-server, nginx,
supervisord, narrows; rendering the files in ``deploy/`` for them; small HTTP helpers.

The files in ``deploy/`` are run as they are, with only their site-specific values (port,
directories, project name) swapped for the test's; ``render`` fails if one of those values
is missing from the file, so the documented files and the tested files cannot drift apart.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from websockets.sync.client import ClientConnection, connect, unix_connect

from tests.helpers import ROOT, default_sigint, free_port, wait_for_port

DEPLOY = ROOT / "deploy"
HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent


def render(name: str, replacements: Mapping[str, str]) -> str:
    """The text of ``deploy/NAME`` with each documented placeholder value replaced."""
    text = (DEPLOY / name).read_text()
    for old, new in replacements.items():
        if old not in text:
            raise AssertionError(f"deploy/{name} no longer contains {old!r}")
        text = text.replace(old, new)
    return text


def env_with_venv(**extra: str) -> dict[str, str]:
    """The environment for processes the tests start: the venv first on PATH, and not the
    test suite's own DJANGO_SETTINGS_MODULE (each project here names its own)."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**env, "PATH": path, "PYTHONUNBUFFERED": "1", **extra}


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached after {timeout}s")
        time.sleep(0.05)


# -- HTTP ------------------------------------------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def get(
    port: int | None = None,
    path: str = "/",
    *,
    unix: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    if unix is not None:
        conn: http.client.HTTPConnection = UnixHTTPConnection(unix, timeout)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def get_json(port: int | None = None, path: str = "/", **kwargs: object) -> dict[str, object]:
    status, body = get(port, path, **kwargs)  # type: ignore[arg-type]
    assert status == 200, (status, body)
    return dict(json.loads(body))


def pid_of(body: bytes) -> int:
    """The pid in plain_app's ``pid=N ...`` answer."""
    return int(body.split()[0].split(b"=")[1])


# -- processes -------------------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    """Live worker processes of a narrows supervisor, or any live children of ``pid``.

    narrows' workers are multiprocessing "spawn" children; multiprocessing's resource
    tracker, another child, is not a worker.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == pid and b"resource_tracker" not in cmdline:
            found.append(int(entry.name))
    return found


LOGS: dict[int, Path] = {}
READY_LINE = re.compile(rb"Worker process \[(\d+)\] is accepting connections")


def ready_pids(proc: subprocess.Popen[bytes]) -> set[int]:
    """Workers of a narrows supervisor started by ``started`` that said they accept."""
    return {int(pid) for pid in READY_LINE.findall(LOGS[proc.pid].read_bytes())}


def gone(pid: int) -> bool:
    """``pid`` has exited (it may remain a zombie until its parent reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def started(
    args: list[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    log: Path,
    ready: Callable[[], None] | None = None,
    new_session: bool = False,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` with output to ``log``; on a failed start or test, show the log.

    ``new_session``: the process leads its own process group, as a shell's foreground job
    does, so ``os.killpg`` can imitate a terminal's Ctrl+C.
    """
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=env or env_with_venv(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
            preexec_fn=default_sigint,
        )
    LOGS[proc.pid] = log
    try:
        if ready is not None:
            try:
                ready()
            except Exception:
                stop_process(proc)
                raise RuntimeError(f"{args[0]} did not start:\n{log.read_text()}") from None
        yield proc
    except BaseException:
        sys.stderr.write(f"--- {log.name} ---\n{log.read_text(errors='replace')[-6000:]}\n")
        raise
    finally:
        stop_process(proc)


def narrows(*args: str) -> list[str]:
    return [sys.executable, "-m", "narrows", *args]


# -- the chat app's WebSocket ---------------------------------------------------------------


@contextmanager
def chat_client(
    url: str = "ws://localhost/ws/chat/",
    *,
    unix: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Iterator[tuple[ClientConnection, str]]:
    """A WebSocket on tests_app's chat, with the ``pid=N client=C`` line it was greeted with."""
    if unix is not None:
        opened = unix_connect(unix, url, open_timeout=10, additional_headers=headers)
    else:
        opened = connect(url, open_timeout=10, additional_headers=headers)
    with opened as ws:
        hello = str(ws.recv(timeout=10))
        assert hello.startswith("hello pid="), hello
        yield ws, hello.removeprefix("hello ")


def greeting_pid(greeting: str) -> int:
    return int(greeting.split()[0].removeprefix("pid="))


# -- redis and nginx -------------------------------------------------------------------------


@contextmanager
def redis_server(binary: str, tmp: Path) -> Iterator[str]:
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with started(args, cwd=tmp, log=tmp / "redis.log", ready=lambda: wait_for_port(port)):
        yield f"redis://127.0.0.1:{port}/0"


NGINX_MAIN = """\
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {site};
}}
"""


@contextmanager
def nginx(binary: str, tmp: Path, upstream_port: int, root: Path) -> Iterator[int]:
    """nginx running ``deploy/nginx/narrows.conf`` (as Debian's sites-enabled would)."""
    port = free_port()
    site = tmp / "narrows-site.conf"
    site.write_text(
        render(
            "nginx/narrows.conf",
            {
                "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
                "listen 80;": f"listen 127.0.0.1:{port};",
                "root /srv/mysite/public;": f"root {root};",
            },
        )
    )
    main = tmp / "nginx.conf"
    main.write_text(NGINX_MAIN.format(tmp=tmp, site=site))
    args = [binary, "-p", str(tmp), "-c", str(main)]
    with started(args, cwd=tmp, log=tmp / "nginx.log", ready=lambda: wait_for_port(port)):
        yield port
