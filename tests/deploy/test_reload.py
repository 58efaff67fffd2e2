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
    log = tmp_path / "narrows.log"
    with harness.started(args, cwd=project, log=log, ready=lambda: wait_for_port(port)):
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
        harness.wait_until(
            lambda: "its replacement failed to start" in log.read_text(), 30, "failed reload"
        )
        assert answer(port).startswith("two ")
        (project / "devapp.py").write_text(APP.format(version="three"))
        harness.wait_until(lambda: answer(port).startswith("three "), 30, "fixed version")
    text = log.read_text()
    assert "devapp.py" in text
    assert "SyntaxError" in text


#: Fails, but only 3 s after its import began (which it marks with a file "importing"):
#: a fix can be saved while it is still booting.
SLOW_TO_FAIL = """
import pathlib
import time

pathlib.Path("importing").touch()
time.sleep(3)
raise RuntimeError("devapp is broken")
"""


def test_a_fix_saved_while_the_broken_code_still_boots_is_served(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "devapp.py").write_text(APP.format(version="one"))
    port = free_port()
    args = harness.narrows("-p", str(port), "--reload", "devapp:app")
    log = tmp_path / "narrows.log"
    with harness.started(args, cwd=project, log=log, ready=lambda: wait_for_port(port)):
        harness.wait_until(lambda: answer(port).startswith("one "), 30, "first version")
        (project / "devapp.py").write_text(SLOW_TO_FAIL)
        # The replacement is importing the broken code (and sleeps before failing).
        harness.wait_until((project / "importing").exists, 30, "the broken code's import")
        (project / "devapp.py").write_text(APP.format(version="two"))
        assert answer(port).startswith("one ")  # still served while the others boot
        harness.wait_until(lambda: answer(port).startswith("two "), 30, "the fix served")
    text = log.read_text()
    assert "devapp is broken" in text
    assert "ran code that has changed since" in text
