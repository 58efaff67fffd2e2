"""``--reload``: changing a .py file restarts the worker with the new code (watchfiles)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.deploy import harness
from tests.helpers import free_port, wait_for_port

pytestmark = pytest.mark.slow

APP = """
import os

VERSION = "{version}"


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"{{VERSION}} pid={{os.getpid()}}".encode()
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": body}})
"""


def answer(port: int) -> str:
    try:
        status, body = harness.get(port, "/", timeout=5)
    except OSError:
        return ""
    return body.decode() if status == 200 else ""


def test_changing_a_py_file_restarts_with_the_new_code(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "devapp.py").write_text(APP.format(version="one"))
    (project / "notes.txt").write_text("not code")
    port = free_port()
    args = harness.narrows("-p", str(port), "--reload", "devapp:app")
    with harness.started(
        args, cwd=project, log=tmp_path / "narrows.log", ready=lambda: wait_for_port(port)
    ):
        harness.wait_until(lambda: answer(port).startswith("one "), 30, "first version")
        first = answer(port)
        # A file that is not Python changes nothing.
        (project / "notes.txt").write_text("still not code")
        time.sleep(1.5)
        assert answer(port) == first
        (project / "devapp.py").write_text(APP.format(version="two"))
        harness.wait_until(lambda: answer(port).startswith("two "), 30, "reloaded version")
        # A syntax error keeps the running worker (and says why); fixing it reloads again.
        (project / "devapp.py").write_text("def broken(:\n")
        time.sleep(3)
        assert answer(port).startswith("two ")
        (project / "devapp.py").write_text(APP.format(version="three"))
        harness.wait_until(lambda: answer(port).startswith("three "), 30, "fixed version")
    log = (tmp_path / "narrows.log").read_text()
    assert "devapp.py" in log
    assert "SyntaxError" in log
