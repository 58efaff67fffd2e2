"""``narrows.install_as_channels()``: ``import channels`` / ``channels_redis`` give narrows.

Each check runs in a fresh interpreter: the alias is process-wide, like the import system.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import ROOT


def run_python(code: str, *, cwd: Path = ROOT, path: list[Path] | None = None) -> str:
    """Run ``code`` in a new interpreter without Django settings; return its stdout."""
    env_path = ":".join(str(p) for p in [*(path or []), ROOT])
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": env_path},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_channels_modules_are_narrows_modules() -> None:
    out = run_python(
        """
        import sys
        import narrows
        narrows.install_as_channels()
        import channels, channels.layers, narrows.layers
        from channels.generic.websocket import AsyncWebsocketConsumer
        from channels.testing import WebsocketCommunicator
        from channels.db import database_sync_to_async
        import channels_redis.core
        from narrows.generic.websocket import AsyncWebsocketConsumer as Native
        import narrows.layers.redis.core
        assert channels is narrows
        assert channels.layers is narrows.layers
        assert channels.layers.channel_layers is narrows.layers.channel_layers
        assert AsyncWebsocketConsumer is Native
        assert channels_redis.core is narrows.layers.redis.core
        assert sys.modules["channels.generic.websocket"] is sys.modules["narrows.generic.websocket"]
        # The module keeps its own identity (pickling, reload, tracebacks).
        assert channels.layers.__name__ == channels.layers.__spec__.name == "narrows.layers"
        assert WebsocketCommunicator.__module__ == "narrows.testing.websocket"
        try:
            import channels.no_such_module
        except ModuleNotFoundError as exc:
            print(exc)
        """
    )
    assert out.strip() == "No module named 'channels.no_such_module'"


def test_install_is_idempotent() -> None:
    out = run_python(
        """
        import sys
        import narrows
        before = len(sys.meta_path)
        narrows.install_as_channels()
        narrows.install_as_channels()
        import channels
        narrows.install_as_channels()
        print(len(sys.meta_path) - before)
        """
    )
    assert out.strip() == "1"


def test_refuses_when_the_real_channels_is_already_imported(tmp_path: Path) -> None:
    # Whatever is importable as ``channels`` stands for the real Channels here.
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "__init__.py").write_text("__version__ = '4.3.2'\n")
    out = run_python(
        """
        import channels
        import narrows
        from narrows.channels_alias import ChannelsAlreadyImported
        try:
            narrows.install_as_channels()
        except ChannelsAlreadyImported as exc:
            assert isinstance(exc, ImportError)
            print(exc)
        else:
            raise SystemExit("install_as_channels() did not refuse")
        """,
        path=[tmp_path],
    )
    assert "must run before anything imports Channels" in out
    assert f"'channels' is already imported from {tmp_path}/channels/__init__.py" in out


def test_alias_wins_over_an_installed_channels(tmp_path: Path) -> None:
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "__init__.py").write_text("raise ImportError('real Channels')\n")
    out = run_python(
        """
        import narrows
        narrows.install_as_channels()
        import channels
        print(channels.__name__)
        """,
        path=[tmp_path],
    )
    assert out.strip() == "narrows"


def test_channels_backend_paths_work_after_install() -> None:
    out = run_python(
        """
        import narrows
        narrows.install_as_channels()
        import django
        from django.conf import settings
        settings.configure(CHANNEL_LAYERS={
            "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
            "redis": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                      "CONFIG": {"hosts": [("127.0.0.1", 6399)]}},
        })
        django.setup()
        from channels.layers import get_channel_layer
        from narrows.layers import InMemoryChannelLayer
        from narrows.layers.redis import RedisChannelLayer
        assert type(get_channel_layer()) is InMemoryChannelLayer
        assert type(get_channel_layer("redis")) is RedisChannelLayer
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_channels_backend_path_without_install_says_what_to_do() -> None:
    out = run_python(
        """
        import django
        from django.conf import settings
        settings.configure(CHANNEL_LAYERS={
            "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
        django.setup()
        from narrows.layers import InvalidChannelLayerError, get_channel_layer
        try:
            get_channel_layer()
        except InvalidChannelLayerError as exc:
            print(exc)
        """
    )
    assert 'use "narrows.layers.InMemoryChannelLayer"' in out
    assert "narrows.install_as_channels()" in out
