"""Each log record printed once by runserver and the narrows command, and the project's
``LOGGING`` respected by both."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.django.procs import Process
from tests.django.test_runserver import http_get
from tests.helpers import free_port

pytestmark = pytest.mark.slow

VIEWS = """

from django.http import HttpResponse


def boom(request):
    raise RuntimeError("boom for the log test")


urlpatterns += [path("boom/", boom)]
"""

PROJECT_LOGGING = """

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"project": {"format": "PROJECT %(name)s %(message)s"}},
    "handlers": {
        "file": {"class": "logging.FileHandler", "filename": LOG_FILE, "formatter": "project"}
    },
    "loggers": {"narrows": {"handlers": ["file"], "level": "INFO", "propagate": False}},
}
"""


@pytest.fixture
def project(template_project: Path, tmp_path: Path) -> Path:
    copy = Path(shutil.copytree(template_project, tmp_path / "mysite"))
    with (copy / "mysite" / "urls.py").open("a") as urls:
        urls.write(VIEWS)
    return copy


def commands(project: Path, port: int) -> dict[str, list[str]]:
    return {
        "runserver": [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"],
        "narrows": [sys.executable, "-m", "narrows", "-p", str(port), "mysite.asgi:application"],
    }


def wait_for(server: Process, text: str, count: int = 1, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while server.output().count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} x{count} expected in:\n{server.output()}"
        time.sleep(0.05)


@pytest.mark.parametrize("command", ["runserver", "narrows"])
def test_django_records_are_printed_once(command: str, project: Path) -> None:
    port = free_port()
    with Process(commands(project, port)[command], cwd=project) as server:
        server.wait_for_port(port)
        assert http_get(port, "/nope/")[0] == 404
        assert http_get(port, "/boom/")[0] == 500
        wait_for(server, "RuntimeError: boom for the log test")
        if command == "runserver":  # the autoreloader's own records
            # StatReloader records a file's mtime on the first tick (once a second) after the
            # module is imported; a touch before that tick is taken as the starting mtime and
            # never reloads. Two ticks' wait, then a touch, reloads exactly once.
            time.sleep(2.5)
            (project / "mysite" / "urls.py").touch()
            wait_for(server, "Starting ASGI/narrows", count=2)
            server.wait_for_port(port)
        time.sleep(0.5)
        output = server.output()
    assert output.count("Not Found: /nope/") == 1, output
    assert output.count("Internal Server Error: /boom/") == 1, output
    assert output.count("Traceback (most recent call last)") == 1, output
    assert output.count("RuntimeError: boom for the log test") == 1, output
    if command == "runserver":
        assert output.count("changed, reloading.") == 1, output


@pytest.mark.parametrize("command", ["runserver", "narrows"])
def test_the_project_logging_setting_decides_where_narrows_records_go(
    command: str, project: Path, tmp_path: Path
) -> None:
    log = tmp_path / "project.log"
    settings = project / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + f"\nLOG_FILE = {str(log)!r}" + PROJECT_LOGGING)
    port = free_port()
    args = commands(project, port)[command]
    with Process([*args[:3], "--noreload", *args[3:]] if command == "runserver" else args,
                 cwd=project) as server:  # fmt: skip
        server.wait_for_port(port)
        deadline = time.monotonic() + 15
        while "Listening on" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        output = server.output()
    assert f"PROJECT narrows.server Listening on http://127.0.0.1:{port}" in log.read_text()
    assert "Listening on" not in output, output
