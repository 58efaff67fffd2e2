"""The rename command in docs/migrating.md turns a Channels + Daphne project into narrows."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.helpers import ROOT

CHANNELS_SETTINGS = """\
INSTALLED_APPS = ["daphne", 'django.contrib.staticfiles', 'chat']
CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}
TEST_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
"""
CHANNELS_ASGI = """\
from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
import channels.layers
notification_channels = ["email"]
"""
SUPERVISOR = "command=daphne -u /run/daphne/daphne%(process_num)d.sock --fd 0 mysite.asgi:app\n"


def rename_command() -> str:
    doc = (ROOT / "docs" / "migrating.md").read_text()
    block = re.search(r"## The one-line rename.*?```sh\n(.*?)```", doc, re.S)
    assert block, "no sh block under 'The one-line rename'"
    lines = [line for line in block[1].splitlines() if not line.startswith("pip ")]
    return "\n".join(lines)


def test_rename_command(tmp_path: Path) -> None:
    (tmp_path / "settings.py").write_text(CHANNELS_SETTINGS)
    (tmp_path / "asgi.py").write_text(CHANNELS_ASGI)
    (tmp_path / "daphne.conf").write_text(SUPERVISOR)
    subprocess.run(["bash", "-euo", "pipefail", "-c", rename_command()], cwd=tmp_path, check=True)
    assert (tmp_path / "settings.py").read_text() == (
        """INSTALLED_APPS = ["narrows", 'django.contrib.staticfiles', 'chat']\n"""
        """CHANNEL_LAYERS = {"default": {"BACKEND": "narrows.layers.redis.RedisChannelLayer"}}\n"""
        """TEST_LAYERS = {"default": {"BACKEND": "narrows.layers.InMemoryChannelLayer"}}\n"""
    )
    assert (tmp_path / "asgi.py").read_text() == (
        "from narrows.auth import AuthMiddlewareStack\n"
        "from narrows.routing import ProtocolTypeRouter, URLRouter\n"
        "import narrows.layers\n"
        'notification_channels = ["email"]\n'
    )
    assert (tmp_path / "daphne.conf").read_text() == (
        "command=narrows -u /run/daphne/daphne%(process_num)d.sock --fd 0 mysite.asgi:app\n"
    )
