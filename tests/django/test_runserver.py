"""``manage.py runserver`` in a project made from the template: real processes, real sockets."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from narrows import __version__
from tests.django.procs import Process
from tests.helpers import free_port


@pytest.fixture
def project(template_project: Path, tmp_path: Path) -> Path:
    """A private copy: runserver creates db.sqlite3 and some tests edit files."""
    return Path(shutil.copytree(template_project, tmp_path / "mysite"))


def runserver(project: Path, port: int, *args: str, env: dict[str, str] | None = None) -> Process:
    return Process(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", *args],
        cwd=project,
        env=env,
    )


def http_get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def echo(port: int, text: str) -> str:
    origin = f"http://127.0.0.1:{port}"
    with connect(f"ws://127.0.0.1:{port}/ws/echo/", origin=origin, open_timeout=10) as ws:  # type: ignore[arg-type]
        ws.send(text)
        return str(ws.recv(timeout=10))


def test_serves_http_websocket_and_static_with_dev_log(project: Path) -> None:
    port = free_port()
    with runserver(project, port, "--noreload") as server:
        server.wait_for_port(port)
        assert http_get(port, "/admin/login/")[0] == 200
        status, body = http_get(port, "/static/admin/css/base.css")
        assert status == 200 and b"{" in body
        assert echo(port, "hello narrows") == "hello narrows"
        server.wait_for_output("WebSocket DISCONNECT /ws/echo/")
        out = server.output()
    assert "Performing system checks..." in out
    assert "System check identified no issues" in out
    assert (
        f"Starting ASGI/narrows version {__version__} development server at "
        f"http://127.0.0.1:{port}/"
    ) in out
    assert "Quit the server with CONTROL-C." in out
    assert "HTTP GET /admin/login/ 200 [" in out
    assert "HTTP GET /static/admin/css/base.css 200 [" in out
    assert "WebSocket HANDSHAKING /ws/echo/ [127.0.0.1:" in out
    assert "WebSocket CONNECT /ws/echo/ [127.0.0.1:" in out


def test_dev_log_escapes_control_characters_in_the_path(project: Path) -> None:
    """A path with an encoded newline cannot forge a second dev log line."""
    port = free_port()
    with runserver(project, port, "--noreload") as server:
        server.wait_for_port(port)
        assert http_get(port, "/nowhere%0aHTTP%20GET%20/forged%20200")[0] == 404
        server.wait_for_output("HTTP GET /nowhere")
        out = server.output()
    assert "HTTP GET /nowhere\\x0aHTTP GET /forged 200 404 [" in out
    assert "\nHTTP GET /forged 200" not in out


def test_websocket_from_a_foreign_origin_is_rejected_and_logged(project: Path) -> None:
    port = free_port()
    with runserver(project, port, "--noreload") as server:
        server.wait_for_port(port)
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{port}/ws/echo/", origin="http://evil.example")  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
        server.wait_for_output("WebSocket REJECT /ws/echo/ [127.0.0.1:")


def test_static_files_need_debug_or_insecure(project: Path) -> None:
    port = free_port()
    with runserver(project, port, "--noreload", env={"DJANGO_DEBUG": "0"}) as server:
        server.wait_for_port(port)
        assert http_get(port, "/static/admin/css/base.css")[0] == 404
        assert echo(port, "still websocket") == "still websocket"
    port = free_port()
    with runserver(project, port, "--noreload", "--insecure", env={"DJANGO_DEBUG": "0"}) as server:
        server.wait_for_port(port)
        assert http_get(port, "/static/admin/css/base.css")[0] == 200
    port = free_port()
    with runserver(project, port, "--noreload", "--nostatic") as server:
        server.wait_for_port(port)
        assert http_get(port, "/static/admin/css/base.css")[0] == 404


def test_noasgi_falls_back_to_djangos_wsgi_server(project: Path) -> None:
    port = free_port()
    with runserver(project, port, "--noreload", "--noasgi") as server:
        server.wait_for_port(port)
        assert http_get(port, "/admin/login/")[0] == 200
        with pytest.raises(InvalidStatus):
            echo(port, "no websocket on WSGI")
        out = server.output()
    # Django 6 says "Starting WSGI development server at"
    assert re.search(rf"Starting (WSGI )?development server at http://127.0.0.1:{port}/", out)
    assert "ASGI/narrows" not in out


def test_autoreloader_restarts_on_code_change(project: Path) -> None:
    port = free_port()
    with runserver(project, port) as server:
        server.wait_for_port(port)
        assert echo(port, "one") == "one"
        before = len(server.output())
        consumers = project / "mysite" / "consumers.py"
        source = consumers.read_text()
        changed = source.replace(
            "await self.send(text_data=text_data)", 'await self.send(text_data="v2:" + text_data)'
        )
        assert changed != source
        # Django's StatReloader records a file's mtime the first time a tick sees it, so a
        # change made before that tick goes unnoticed: rewrite (new mtime) until it reloads.
        deadline = time.monotonic() + 60
        while "changed, reloading." not in server.output()[before:]:
            assert time.monotonic() < deadline, server.output()
            time.sleep(1.1)
            consumers.write_text(changed)
            os.utime(consumers)
            time.sleep(1.5)
        server.wait_for_output("development server at", start=before)
        server.wait_for_port(port)
        assert echo(port, "two") == "v2:two"


def test_without_asgi_application_runserver_serves_djangos_views(project: Path) -> None:
    """As Django's runserver falls back to its default handler without WSGI_APPLICATION:
    narrows' handler serves the views (and static files); there are no WebSocket routes."""
    (project / "mysite" / "plain_settings.py").write_text(
        "from mysite.settings import *  # noqa\nASGI_APPLICATION = None\n"
    )
    port = free_port()
    args = ["--noreload", "--settings", "mysite.plain_settings"]
    with runserver(project, port, *args) as server:
        server.wait_for_port(port)
        status, body = http_get(port, "/admin/login/")
        assert status == 200 and b"csrfmiddlewaretoken" in body, server.output()
        assert http_get(port, "/static/admin/css/base.css")[0] == 200
        with pytest.raises(InvalidStatus):
            echo(port, "no route")


def test_check_errors_stop_runserver_with_the_message(project: Path) -> None:
    (project / "mysite" / "broken_settings.py").write_text(
        "from mysite.settings import *  # noqa\nASGI_APPLICATION = 'mysite.nope.application'\n"
    )
    port = free_port()
    with runserver(project, port, "--noreload", "--settings", "mysite.broken_settings") as server:
        assert server.proc.wait(30) == 1
        out = server.output()
    assert "(narrows.E002) ASGI_APPLICATION 'mysite.nope.application' could not be imported" in out
    assert "ModuleNotFoundError: No module named 'mysite.nope'" in out


@pytest.mark.parametrize("reload", [False, True], ids=["noreload", "autoreload"])
def test_ctrl_c_stops_the_server(project: Path, reload: bool) -> None:
    port = free_port()
    args = [] if reload else ["--noreload"]
    with runserver(project, port, *args) as server:
        server.wait_for_port(port)
        assert echo(port, "up") == "up"
        started = time.monotonic()
        code = server.stop(signal.SIGINT)
        assert time.monotonic() - started < 10
        assert code == 0, server.output()


def test_port_in_use_is_reported(project: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with runserver(project, port, "--noreload") as server:
            assert server.proc.wait(30) == 1
            out = server.output()
    assert f"Cannot listen on 127.0.0.1:{port}: Address already in use" in out
    assert "Error: the narrows server stopped with exit code 1." in out
