"""``narrows migrate``: renames exactly what must change, and nothing else."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from narrows.migrate import migrate_text
from tests.helpers import ROOT


def migrated(code: str) -> str:
    new, notes = migrate_text(textwrap.dedent(code), "python")
    assert not notes, notes
    return new


def notes_of(code: str) -> list[str]:
    return [note.message for note in migrate_text(textwrap.dedent(code), "python")[1]]


def test_settings_apps_and_backends() -> None:
    before = """\
        INSTALLED_APPS = [
            "daphne",
            'django.contrib.staticfiles',
            "chat",
            "channels",  # websockets
        ]
        CHANNEL_LAYERS = {
            "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {}},
            "memory": {'BACKEND': 'channels.layers.InMemoryChannelLayer'},
        }
        CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        """
    assert migrated(before) == textwrap.dedent(
        """\
        INSTALLED_APPS = [
            "narrows",
            'django.contrib.staticfiles',
            "chat",
        ]
        CHANNEL_LAYERS = {
            "default": {"BACKEND": "narrows.layers.redis.RedisChannelLayer", "CONFIG": {}},
            "memory": {'BACKEND': 'narrows.layers.InMemoryChannelLayer'},
        }
        CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        """
    )


APP_LISTS = [
    (
        'APPS = ["a"]\nINSTALLED_APPS = ("daphne", "a", "channels")\n',
        'APPS = ["a"]\nINSTALLED_APPS = ("narrows", "a")\n',
    ),
    ('INSTALLED_APPS += ["channels"]\n', 'INSTALLED_APPS += ["narrows"]\n'),
    ('INSTALLED_APPS.append("channels")\n', 'INSTALLED_APPS.append("narrows")\n'),
    (
        'settings.configure(INSTALLED_APPS=["channels", "x"])\n',
        'settings.configure(INSTALLED_APPS=["narrows", "x"])\n',
    ),
    (
        'INSTALLED_APPS = [*BASE, "channels.apps.ChannelsConfig"]\n',
        'INSTALLED_APPS = [*BASE, "narrows.apps.NarrowsConfig"]\n',
    ),
    (
        'layers["default"]["BACKEND"] = "channels.layers.InMemoryChannelLayer"\n',
        'layers["default"]["BACKEND"] = "narrows.layers.InMemoryChannelLayer"\n',
    ),
    ('INSTALLED_APPS = ["narrows", "channels"]\n', 'INSTALLED_APPS = ["narrows"]\n'),
]


@pytest.mark.parametrize(("before", "after"), APP_LISTS)
def test_app_lists_in_every_spelling(before: str, after: str) -> None:
    assert migrated(before) == after


def test_imports_and_the_names_they_bind() -> None:
    before = """\
        import channels.layers
        import channels_redis.core
        import channels.generic.websocket as ws
        from channels.routing import ProtocolTypeRouter, URLRouter
        from channels_redis.core import RedisChannelLayer
        from channels import (
            DEFAULT_CHANNEL_LAYER,
        )

        layer = channels.layers.get_channel_layer()
        redis = channels_redis.core.RedisChannelLayer
        """
    assert migrated(before) == textwrap.dedent(
        """\
        import narrows.layers
        import narrows.layers.redis.core
        import narrows.generic.websocket as ws
        from narrows.routing import ProtocolTypeRouter, URLRouter
        from narrows.layers.redis.core import RedisChannelLayer
        from narrows import (
            DEFAULT_CHANNEL_LAYER,
        )

        layer = narrows.layers.get_channel_layer()
        redis = narrows.layers.redis.core.RedisChannelLayer
        """
    )


def test_module_paths_in_patch_and_importorskip() -> None:
    before = """\
        channels = pytest.importorskip("channels")
        with mock.patch("channels.layers.get_channel_layer"):
            pass
        import_module("channels_redis.core")
        """
    assert migrated(before) == textwrap.dedent(
        """\
        channels = pytest.importorskip("narrows")
        with mock.patch("narrows.layers.get_channel_layer"):
            pass
        import_module("narrows.layers.redis.core")
        """
    )


def test_leaves_everything_else_alone() -> None:
    untouched = """\
        # channels: the channels layer, see channels.layers
        import pytest

        pytestmark = pytest.mark.channels
        CLIENTS = ["aiohttp", "asgi", "channels", "django"]
        notification_channels = ["email", "sms"]


        @pytest.mark.channels
        def test_channels(channels):
            channels.append("x")
            assert self.channels.daphne == "channels.layers.InMemoryChannelLayer"
            print("daphne", f"{channels}")
        """
    assert migrated(untouched) == textwrap.dedent(untouched)


def test_a_name_bound_twice_is_left_for_the_user() -> None:
    code = """\
        try:
            import channels.layers
        except ImportError:
            channels = None
        """
    new, notes = migrate_text(textwrap.dedent(code), "python")
    assert new == textwrap.dedent(code)
    assert "'channels' is also bound by something other than an import" in notes[0].message


def test_daphne_imports_without_counterpart_are_noted() -> None:
    code = (
        "from daphne.server import Server\n"
        "from daphne.management.commands.runserver import Command\n"
    )
    new, notes = migrate_text(code, "python")
    assert new == (
        "from daphne.server import Server\n"
        "from narrows.management.commands.runserver import Command\n"
    )
    assert [n.line for n in notes] == [1]
    assert "daphne.server has no narrows counterpart" in notes[0].message


def test_missing_names_are_noted() -> None:
    assert notes_of("from channels.layers import NoSuchThing\n") == [
        "narrows has no narrows.layers.NoSuchThing: this import will fail"
    ]


def test_unparsable_python_is_left_alone() -> None:
    new, notes = migrate_text("print 'channels'\nimport channels\n", "python")
    assert new == "print 'channels'\nimport channels\n"
    assert "cannot parse" in notes[0].message


@pytest.mark.parametrize(
    ("kind", "before", "after"),
    [
        (
            "supervisor",
            "[program:daphne]\n"
            "command=/venv/bin/daphne -u /run/daphne/daphne%(process_num)d.sock --fd 0 "
            "--access-log - --proxy-headers mysite.asgi:application ; was daphne\n"
            "directory=/srv/daphne\n",
            "[program:daphne]\n"
            "command=/venv/bin/narrows -u /run/daphne/daphne%(process_num)d.sock --fd 0 "
            "--access-log - --proxy-headers mysite.asgi:application ; was daphne\n"
            "directory=/srv/daphne\n",
        ),
        (
            "supervisor",
            "[program:web]\ncommand=bash -c 'cd /srv && exec daphne -b 0.0.0.0 app:a'\n"
            "[supervisord]\nlogfile=daphne.log\n",
            "[program:web]\ncommand=bash -c 'cd /srv && exec narrows -b 0.0.0.0 app:a'\n"
            "[supervisord]\nlogfile=daphne.log\n",
        ),
        (
            "systemd",
            "[Service]\nExecStart=-/srv/venv/bin/python -m daphne \\\n    -b 127.0.0.1 app:a\n"
            "Environment=DAPHNE=daphne\n",
            "[Service]\nExecStart=-/srv/venv/bin/python -m narrows \\\n    -b 127.0.0.1 app:a\n"
            "Environment=DAPHNE=daphne\n",
        ),
        (
            "procfile",
            "web: env PYTHONUNBUFFERED=1 daphne app.asgi:application -p $PORT\n"
            "worker: python manage.py runworker daphne\n",
            "web: env PYTHONUNBUFFERED=1 narrows app.asgi:application -p $PORT\n"
            "worker: python manage.py runworker daphne\n",
        ),
        (
            "dockerfile",
            'RUN pip install daphne\nCMD ["daphne", "-b", "0.0.0.0", "app.asgi:application"]\n',
            'RUN pip install daphne\nCMD ["narrows", "-b", "0.0.0.0", "app.asgi:application"]\n',
        ),
    ],
)
def test_command_lines(kind: str, before: str, after: str) -> None:
    assert migrate_text(before, kind) == (after, [])


def narrows_migrate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "narrows", "migrate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_command_prints_a_diff_and_writes_only_with_write(tmp_path: Path) -> None:
    (tmp_path / "asgi.py").write_text("from channels.routing import URLRouter\n")
    (tmp_path / "Procfile").write_text("web: daphne app.asgi:application\n")
    (tmp_path / "README.txt").write_text("daphne and channels\n")
    latin = "# -*- coding: latin-1 -*-\nimport channels\nname = 'caf\xe9'\n"
    (tmp_path / "legacy.py").write_bytes(latin.encode("latin-1"))
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "x.py").write_text("import channels\n")

    shown = narrows_migrate(".", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "-from channels.routing import URLRouter\n+from narrows.routing import URLRouter" in (
        shown.stdout
    )
    assert "+web: narrows app.asgi:application" in shown.stdout
    assert "3 of 3 files would change" in shown.stderr
    assert (tmp_path / "asgi.py").read_text() == "from channels.routing import URLRouter\n"
    assert narrows_migrate("--check", ".", cwd=tmp_path).returncode == 1

    written = narrows_migrate("--write", "-q", ".", cwd=tmp_path)
    assert written.returncode == 0 and written.stdout == ""
    assert (tmp_path / "asgi.py").read_text() == "from narrows.routing import URLRouter\n"
    assert (tmp_path / "legacy.py").read_bytes() == latin.replace(
        "import channels", "import narrows"
    ).encode("latin-1")
    assert (tmp_path / "README.txt").read_text() == "daphne and channels\n"
    assert (tmp_path / ".venv" / "lib" / "x.py").read_text() == "import channels\n"
    assert narrows_migrate("--check", ".", cwd=tmp_path).returncode == 0


def test_the_guide_shows_the_command() -> None:
    guide = (ROOT / "docs" / "migrating.md").read_text()
    assert "narrows migrate ." in guide
    assert "sed -i" not in guide
