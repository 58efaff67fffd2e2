"""docs/tutorial.md followed as written, in an empty directory: its shell commands run in one
bash session, its files are written from its own code blocks; then the project's tests pass,
two clients chat through the narrows command, and step 8's worker posts an announcement.

How the document's blocks are read:

- a ``sh`` block runs, unless the comment before it is ``<!-- tutorial-test: skip (...) -->``
  (commands that wait: runserver, the server, runworker; the test starts those itself);
- a block after ``<!-- examples/chat/PATH (verbatim...) -->`` or ``<!-- file: PATH -->`` is
  written to PATH, relative to the project (``examples/chat/`` stripped);
- a block after ``<!-- append to PATH -->`` is appended to PATH.

The one substitution: ``NARROWS=...`` points at the wheel built from this checkout.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.django.chat_client import ChatUser, receive_json
from tests.helpers import ROOT, default_sigint, free_port, require_binary, wait_for_port
from tests.layers.servers import RedisServer

pytestmark = pytest.mark.slow

TUTORIAL = (ROOT / "docs" / "tutorial.md").read_text()
BLOCK = re.compile(r"(?:<!-- (?P<marker>[^>]*?) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)```\n", re.S)
PASSWORD = "tutorial-password"


def build_script(wheel: Path) -> tuple[str, int]:
    """The tutorial as one bash script; and how many files it writes."""
    lines = ["set -euo pipefail"]
    files = 0
    for block in BLOCK.finditer(TUTORIAL):
        marker, lang, body = block["marker"] or "", block["lang"], block["body"]
        target = re.match(
            r"(?:examples/chat/(\S+) \(verbatim|file: (\S+)$|append to (\S+)$)", marker
        )
        if lang == "sh" and not marker.startswith("tutorial-test: skip"):
            lines.append(re.sub(r"^NARROWS=\S+", f"NARROWS={wheel}", body, flags=re.M))
        elif target:
            path = target[1] or target[2] or target[3]
            mode = ">>" if target[3] else ">"
            lines.append(f"cat {mode} {path} <<'TUTORIAL_FILE_END'\n{body}TUTORIAL_FILE_END")
            files += 1
    return "\n".join(lines) + "\n", files


def test_the_tutorial_says_what_the_test_reads() -> None:
    markers = [m["marker"] for m in BLOCK.finditer(TUTORIAL) if m["marker"]]
    assert markers, "no markers: the block syntax changed"
    for marker in markers:
        assert re.match(r"tutorial-test: skip \(.+\)$|examples/chat/\S+ \(verbatim|file: \S+$|"
                        r"append to \S+$", marker), marker  # fmt: skip


@pytest.fixture(scope="module")
def project(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tutorial's project, built by the tutorial's own commands and files."""
    home = tmp_path_factory.mktemp("tutorial")
    script, files = build_script(wheel)
    assert files >= 15, script
    (home / "tutorial.sh").write_text(script)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    done = subprocess.run(
        ["bash", str(home / "tutorial.sh")],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "OK" in done.stderr  # `python manage.py test chat` ran and passed
    return home / "chatsite"


def venv_env(project: Path, **extra: str) -> dict[str, str]:
    bindir = project.parent / ".venv" / "bin"
    return {
        "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(project.parent),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@contextmanager
def running(
    args: list[str], project: Path, env: dict[str, str], port: int | None = None
) -> Iterator[Path]:
    log = project.parent / f"{args[0].rsplit('/', 1)[-1]}-{port or 'worker'}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            args, cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=default_sigint,
        )  # fmt: skip
    try:
        if port is not None:
            try:
                wait_for_port(port, timeout=60)
            except TimeoutError:
                raise AssertionError(log.read_text()) from None
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve(project: Path) -> tuple[list[str], int]:
    port = free_port()
    narrows = str(project.parent / ".venv" / "bin" / "narrows")
    return [narrows, "-p", str(port), "chatsite.asgi:application"], port


@pytest.fixture(scope="module")
def admin(project: Path) -> str:
    done = subprocess.run(
        ["python", "manage.py", "createsuperuser", "--noinput", "--username", "ada",
         "--email", "ada@example.com"],
        cwd=project, env=venv_env(project, DJANGO_SUPERUSER_PASSWORD=PASSWORD),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return "ada"


def test_two_clients_chat_in_the_tutorial_project(project: Path, admin: str) -> None:
    env = venv_env(project)
    args, port = serve(project)
    with running(args, project, env, port):
        ada, guest = ChatUser(port), ChatUser(port)
        status, _, index = guest.get("/")
        assert status == 200 and "Pick a room" in index
        status, _, page = guest.get("/chat/lobby/")
        assert status == 200 and 'data-ws-path="/ws/chat/lobby/"' in page
        assert guest.get("/static/chat/chat.js")[0] == 200
        ada.login(admin, PASSWORD)
        with ada.websocket("/ws/chat/lobby/") as a, guest.websocket("/ws/chat/lobby/") as g:
            assert receive_json(a) == {"type": "history", "messages": []}
            assert receive_json(g)["type"] == "history"
            a.send('{"message": "hello from ada"}')
            for ws in (a, g):
                got = receive_json(ws)
                assert (got["type"], got["user"], got["text"]) == (
                    "message",
                    "ada",
                    "hello from ada",
                )
            g.send('{"message": "hi ada"}')
            assert [receive_json(ws)["user"] for ws in (a, g)] == ["anonymous", "anonymous"]
        with ada.websocket("/ws/chat/admin/") as staff:  # ada is a superuser, so staff
            assert receive_json(staff)["type"] == "history"


def test_step_8_worker_posts_announcements_through_redis(
    project: Path, admin: str, tmp_path: Path
) -> None:
    redis = RedisServer(require_binary("redis-server"), tmp_path).start()
    try:
        env = venv_env(project, REDIS_URL=f"{redis.url}/0")
        args, port = serve(project)
        worker = ["python", "manage.py", "runworker", "chat-announcements"]
        with running(args, project, env, port), running(worker, project, env) as worker_log:
            guest = ChatUser(port)
            with (
                guest.websocket("/ws/chat/lobby/") as one,
                guest.websocket("/ws/chat/lobby/") as two,
            ):
                receive_json(one), receive_json(two)
                (command,) = re.findall(
                    r"^REDIS_URL=\S+ (python manage.py announce .+)$", TUTORIAL, re.M
                )
                done = subprocess.run(
                    ["bash", "-c", command], cwd=project, env=env,
                    capture_output=True, text=True, timeout=120,
                )  # fmt: skip
                assert done.returncode == 0, done.stdout + done.stderr
                for ws in (one, two):
                    got = receive_json(ws, timeout=30)
                    assert (got["user"], got["text"]) == (
                        "announcements",
                        "The chat restarts at 18:00",
                    ), worker_log.read_text()
    finally:
        redis.stop()
