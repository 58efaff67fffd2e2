"""Real projects on narrows: the Channels tutorial migrated, and projects that keep
importing ``channels`` through ``install_as_channels()`` under manage.py and the narrows
command. Plus: every module of narrows imports before ``django.setup()``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.compat import channels_suite
from tests.compat.suites import IN_CI, ROOT
from tests.compat.tutorial import make_project
from tests.django.procs import Process, child_env
from tests.helpers import free_port

INSTALL = "import narrows\n\nnarrows.install_as_channels()\n"


@pytest.fixture
def checkout() -> Path:
    found = channels_suite.find_checkout()
    if found is None:
        if IN_CI:
            pytest.fail(channels_suite.HOW_TO_GET_IT)
        pytest.skip(channels_suite.HOW_TO_GET_IT)
    return found


def chat_echo(port: int) -> dict[str, str]:
    with connect(
        f"ws://127.0.0.1:{port}/ws/chat/lobby/",
        origin=f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
        open_timeout=10,
    ) as ws:
        ws.send(json.dumps({"message": "hello"}))
        reply: dict[str, str] = json.loads(ws.recv(timeout=10))
        return reply


def serve(project: Path) -> tuple[Process, int]:
    port = free_port()
    proc = Process(
        [sys.executable, "-m", "narrows", "-p", str(port), "mysite.asgi:application"],
        cwd=project,
    )
    proc.wait_for_port(port)
    return proc, port


def manage(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        env=child_env(None),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_channels_tutorial_migrated_runs_under_the_narrows_command(
    checkout: Path, tmp_path: Path
) -> None:
    project = make_project(checkout, tmp_path)
    assert (
        "from channels.auth import AuthMiddlewareStack"
        in (project / "mysite" / "asgi.py").read_text()
    )
    done = subprocess.run(
        [sys.executable, "-m", "narrows", "migrate", "--write", "."],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "3 of " in done.stderr  # settings.py, asgi.py, consumers.py
    assert manage(project, "migrate", "-v", "0").returncode == 0
    proc, port = serve(project)
    with proc:
        assert chat_echo(port) == {"message": "hello"}


def test_install_as_channels_in_settings_serves_manage_py_and_the_narrows_command(
    checkout: Path, tmp_path: Path
) -> None:
    project = make_project(checkout, tmp_path)
    settings = project / "mysite" / "settings.py"
    # Daphne is not installed here: its app entry becomes narrows', the rest stays.
    text = settings.read_text().replace('"daphne",', '"narrows",')
    settings.write_text(INSTALL + text)
    # manage.py loads the settings first: the tutorial's asgi.py works unchanged.
    checked = manage(project, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    shell = manage(
        project,
        "shell",
        "-c",
        "import channels, narrows, mysite.asgi; print(channels is narrows, "
        "type(mysite.asgi.application).__module__)",
    )
    # (Django 5.2 shell prints a line about its automatic imports first.)
    assert shell.stdout.splitlines()[-1].split() == ["True", "narrows.routing"], shell.stderr
    assert manage(project, "migrate", "-v", "0").returncode == 0

    # The narrows command imports asgi.py first. This one initialises Django before
    # importing Channels (as Channels' deployment docs advise): settings.py suffices.
    asgi = project / "mysite" / "asgi.py"
    tutorial_asgi = asgi.read_text()
    asgi.write_text(
        textwrap.dedent(
            """\
            import os

            from django.core.asgi import get_asgi_application

            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
            django_asgi_app = get_asgi_application()

            from channels.auth import AuthMiddlewareStack
            from channels.routing import ProtocolTypeRouter, URLRouter

            from chat.routing import websocket_urlpatterns

            application = ProtocolTypeRouter(
                {"http": django_asgi_app,
                 "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns))}
            )
            """
        )
    )
    proc, port = serve(project)
    with proc:
        assert chat_echo(port) == {"message": "hello"}

    # The tutorial's asgi.py imports channels before the settings: the two lines go on
    # its top too (docs/migrating.md says so).
    asgi.write_text(INSTALL + tutorial_asgi)
    proc, port = serve(project)
    with proc:
        assert chat_echo(port) == {"message": "hello"}


def test_every_module_imports_before_django_setup() -> None:
    # Management commands are left out: Django imports them only after setup.
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import narrows
        failed = []
        names = sorted(m.name for m in pkgutil.walk_packages(narrows.__path__, "narrows."))
        for name in names:
            if name.startswith("narrows.management.commands."):
                continue
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
        from django.apps import apps
        from django.conf import settings
        assert not settings.configured and not apps.ready
        print(len(names), "modules")
        print("\\n".join(failed))
        """
    )
    env = {k: v for k, v in child_env(None).items() if not k.startswith("DJANGO")}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    count, *failures = done.stdout.strip().splitlines()
    assert int(count.split()[0]) > 60
    assert failures == []
