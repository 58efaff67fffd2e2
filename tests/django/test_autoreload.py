"""Code reloads close open WebSockets with 1012 (service restart), as SIGTERM does, in both
``manage.py runserver`` (Django's autoreloader) and ``narrows --reload``; and Ctrl+C still
stops runserver when the test run itself ignores SIGINT."""

from __future__ import annotations

import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.django.procs import Process
from tests.django.test_runserver import echo
from tests.helpers import free_port

pytestmark = pytest.mark.slow

WS_APP = """
async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
"""


@pytest.fixture
def project(template_project: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template_project, tmp_path / "mysite"))


def close_code_after_touching(port: int, path: str, changed: Path) -> int | None:
    origin = f"http://127.0.0.1:{port}"
    with connect(f"ws://127.0.0.1:{port}{path}", origin=origin, open_timeout=10) as ws:  # type: ignore[arg-type]
        time.sleep(0.3)
        changed.write_text(changed.read_text() + "\n# changed\n")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


def test_runserver_reload_closes_websockets_with_1012(project: Path) -> None:
    port = free_port()
    args = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"]
    with Process(args, cwd=project) as server:
        server.wait_for_port(port)
        code = close_code_after_touching(port, "/ws/echo/", project / "mysite" / "urls.py")
        assert code == 1012, server.output()
        server.wait_for_output("changed, reloading.")
        deadline = time.monotonic() + 30
        while server.output().count("Listening on") < 2:  # the new code serves again
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
        assert echo(port, "after reload") == "after reload"


def test_narrows_reload_closes_websockets_with_1012(tmp_path: Path) -> None:
    (tmp_path / "wsapp.py").write_text(WS_APP)
    port = free_port()
    args = [sys.executable, "-m", "narrows", "-p", str(port), "--reload", "wsapp:app"]
    with Process(args, cwd=tmp_path) as server:
        server.wait_for_port(port)
        server.wait_for_output("is accepting connections")
        assert close_code_after_touching(port, "/", tmp_path / "wsapp.py") == 1012


@contextmanager
def sigint_ignored() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_reaches_children_of_a_run_that_ignores_sigint(project: Path) -> None:
    port = free_port()
    args = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"]
    with sigint_ignored():  # as under `./scripts/test &` from a script
        server = Process(args, cwd=project)
    with server:
        server.wait_for_port(port)
        started = time.monotonic()
        assert server.stop(signal.SIGINT) == 0, server.output()
        assert time.monotonic() - started < 10
