"""``python -m narrows.startproject``: the project template."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from narrows.startproject import TEMPLATE_DIR, main
from tests.django.procs import manage


def test_files_are_rendered(template_project: Path) -> None:
    files = sorted(str(p.relative_to(template_project)) for p in template_project.rglob("*.py"))
    assert files == [
        "manage.py",
        "mysite/__init__.py",
        "mysite/asgi.py",
        "mysite/consumers.py",
        "mysite/routing.py",
        "mysite/settings.py",
        "mysite/urls.py",
    ]
    asgi = (template_project / "mysite" / "asgi.py").read_text()
    assert 'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")' in asgi
    for name in ("ProtocolTypeRouter(", "AuthMiddlewareStack(", "AllowedHostsOriginValidator("):
        assert name in asgi
    settings = (template_project / "mysite" / "settings.py").read_text()
    assert 'ASGI_APPLICATION = "mysite.asgi.application"' in settings
    assert "{{" not in settings and "{{" not in asgi


def test_generated_project_passes_checks(template_project: Path) -> None:
    done = manage(template_project, "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def layer_backend(project: Path, env: dict[str, str]) -> str:
    code = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'mysite.settings';"
        "import django; django.setup();"
        "from narrows.layers import get_channel_layer;"
        "from django.conf import settings;"
        "layer = get_channel_layer();"
        "print(settings.CHANNEL_LAYERS['default']['BACKEND'], type(layer).__name__,"
        " settings.CHANNEL_LAYERS['default'].get('CONFIG'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_in_memory_layer_by_default_redis_with_redis_url(template_project: Path) -> None:
    assert layer_backend(template_project, {}) == (
        "narrows.layers.InMemoryChannelLayer InMemoryChannelLayer None"
    )
    with_redis = layer_backend(template_project, {"REDIS_URL": "redis://127.0.0.1:6390/2"})
    assert with_redis == (
        "narrows.layers.redis.RedisChannelLayer RedisChannelLayer "
        "{'hosts': ['redis://127.0.0.1:6390/2']}"
    )


def test_django_admin_template_option_works_too(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "startproject",
            "--template",
            str(TEMPLATE_DIR),
            "otherproj",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "otherproj" / "otherproj" / "asgi.py").is_file()


def test_main_reports_usage_and_django_errors(tmp_path: Path, capsys: object) -> None:
    assert main([]) == 2
    assert main(["--help"]) == 0
    # Django refuses names that are not identifiers; main returns its exit status.
    assert main(["not-an-identifier", str(tmp_path)]) == 1


def test_narrows_command_dispatches_startproject(tmp_path: Path) -> None:
    """``python -m narrows startproject NAME`` (the ``narrows`` console script) makes a project."""
    result = subprocess.run(
        [sys.executable, "-m", "narrows", "startproject", "viacli", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    asgi = (tmp_path / "viacli" / "asgi.py").read_text()
    assert "ProtocolTypeRouter" in asgi
    assert "AllowedHostsOriginValidator" in asgi
