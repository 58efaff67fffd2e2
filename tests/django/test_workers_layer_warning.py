"""``narrows --workers N`` with the in-memory channel layer warns, once, at startup."""

from __future__ import annotations

import logging
import sys
import time

import pytest
from django.test import override_settings

from narrows.checks import warn_about_per_process_layers
from tests.django.procs import CHAT_DIR, Process
from tests.helpers import free_port

IN_MEMORY = {"default": {"BACKEND": "narrows.layers.InMemoryChannelLayer"}}
REDIS = {"default": {"BACKEND": "narrows.layers.redis.RedisChannelLayer"}}
WARNING = "with the in-memory channel layer"


@pytest.mark.parametrize(
    ("environ", "layers", "warns"),
    [
        ({"NARROWS_WORKERS": "4", "NARROWS_WORKER_NUMBER": "1"}, IN_MEMORY, True),
        ({"NARROWS_WORKERS": "4", "NARROWS_WORKER_NUMBER": "2"}, IN_MEMORY, False),
        ({"NARROWS_WORKERS": "1", "NARROWS_WORKER_NUMBER": "1"}, IN_MEMORY, False),
        ({}, IN_MEMORY, False),
        ({"NARROWS_WORKERS": "4", "NARROWS_WORKER_NUMBER": "1"}, REDIS, False),
    ],
)
def test_only_the_first_of_several_workers_warns_about_a_per_process_layer(
    environ: dict[str, str],
    layers: dict[str, object],
    warns: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with override_settings(CHANNEL_LAYERS=layers), caplog.at_level(logging.WARNING):
        assert warn_about_per_process_layers(environ) is warns
    messages = [r.getMessage() for r in caplog.records if WARNING in r.getMessage()]
    assert len(messages) == int(warns)
    if warns:
        assert 'CHANNEL_LAYERS["default"]["BACKEND"]' in messages[0]
        assert "narrows.layers.redis.RedisChannelLayer" in messages[0]


@pytest.mark.slow
@pytest.mark.parametrize("redis", [False, True], ids=["in-memory", "redis"])
def test_the_demo_with_three_workers_warns_once(redis: bool, tmp_path: object) -> None:
    port = free_port()
    env = {"CHAT_DB": f"{tmp_path}/chat.sqlite3"}
    if redis:  # configured, not connected to: the layer connects on first use
        env["REDIS_URL"] = "redis://127.0.0.1:1/0"
    args = [sys.executable, "-m", "narrows", "-p", str(port), "--workers", "3"]
    with Process([*args, "chatsite.asgi:application"], cwd=CHAT_DIR, env=env) as server:
        server.wait_for_port(port)
        deadline = time.monotonic() + 60
        while server.output().count("is accepting connections") < 3:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
        output = server.output()
    assert output.count(WARNING) == (0 if redis else 1), output
