"""``manage.py runworker``: background consumers fed through a real Redis channel layer."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from narrows.layers.redis import RedisChannelLayer
from tests.django.procs import Process, manage
from tests.helpers import free_port, require_binary, wait_for_port

WORKER_APP = """
from narrows.consumer import AsyncConsumer
from narrows.routing import ChannelNameRouter, ProtocolTypeRouter


class Doubler(AsyncConsumer):
    async def double(self, message):
        await self.channel_layer.send(
            message["reply_to"], {"type": "result", "value": message["value"] * 2}
        )


application = ProtocolTypeRouter({"channel": ChannelNameRouter({"doubler": Doubler.as_asgi()})})
"""


@pytest.fixture
def redis_url() -> Iterator[str]:
    binary = require_binary("redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def project(template_project: Path, tmp_path: Path) -> Path:
    project = Path(shutil.copytree(template_project, tmp_path / "mysite"))
    (project / "mysite" / "tasks.py").write_text(WORKER_APP)
    (project / "mysite" / "worker_settings.py").write_text(
        "from mysite.settings import *  # noqa\nASGI_APPLICATION = 'mysite.tasks.application'\n"
    )
    return project


async def ask_worker(url: str, value: int) -> dict[str, object]:
    layer = RedisChannelLayer(hosts=[url])
    try:
        reply_to = await layer.new_channel()
        await layer.send("doubler", {"type": "double", "value": value, "reply_to": reply_to})
        return await asyncio.wait_for(layer.receive(reply_to), timeout=20)
    finally:
        await layer.flush()
        await layer.close()


def test_runworker_consumes_channel_messages(project: Path, redis_url: str) -> None:
    command = [sys.executable, "manage.py", "runworker", "doubler"]
    command += ["--settings", "mysite.worker_settings"]
    with Process(command, cwd=project, env={"REDIS_URL": redis_url}) as worker:
        worker.wait_for_output("Running worker for channels doubler (layer 'default')")
        assert asyncio.run(ask_worker(redis_url, 21)) == {"type": "result", "value": 42}


def test_runworker_needs_channel_names(project: Path) -> None:
    done = manage(project, "runworker")
    assert done.returncode != 0
    assert "the following arguments are required: channels" in done.stderr


def test_runworker_unknown_layer_alias_is_an_error(project: Path) -> None:
    done = manage(project, "runworker", "--layer", "nope", "doubler")
    assert done.returncode != 0
    assert (
        "Expected a channel layer named 'nope' in settings.CHANNEL_LAYERS, got 'default'."
    ) in done.stderr
