"""``channel_layers`` / ``get_channel_layer``: building layers from ``CHANNEL_LAYERS``."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.test import override_settings

from narrows.layers import (
    InMemoryChannelLayer,
    InvalidChannelLayerError,
    channel_layers,
    get_channel_layer,
)
from tests.helpers import ROOT


def test_default_layer_is_built_once() -> None:
    layer = get_channel_layer()
    assert isinstance(layer, InMemoryChannelLayer)
    assert get_channel_layer() is layer
    assert "default" in channel_layers


def test_unknown_alias_gives_none() -> None:
    assert get_channel_layer("nope") is None


def test_config_and_reset_on_setting_change() -> None:
    config = {
        "default": {
            "BACKEND": "narrows.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 7, "channel_capacity": {"http.*": 3}},
            "TEST_CONFIG": {"capacity": 2},
        }
    }
    with override_settings(CHANNEL_LAYERS=config):
        layer = get_channel_layer()
        assert layer.capacity == 7
        assert layer.get_capacity("http.request") == 3
        assert channel_layers.make_test_backend("default").capacity == 2
    assert get_channel_layer().capacity == 100


def test_redis_backend_from_settings() -> None:
    config = {
        "default": {
            "BACKEND": "narrows.layers.redis.RedisChannelLayer",
            "CONFIG": {"hosts": [("127.0.0.1", 6399)], "prefix": "site", "expiry": 30},
        }
    }
    with override_settings(CHANNEL_LAYERS=config):
        layer = get_channel_layer()
        assert type(layer).__name__ == "RedisChannelLayer"
        assert layer.prefix == "site"
        assert layer.expiry == 30


@pytest.mark.parametrize(
    ("backend", "suggestion"),
    [
        ("channels.layers.InMemoryChannelLayer", "narrows.layers.InMemoryChannelLayer"),
        ("channels_redis.core.RedisChannelLayer", "narrows.layers.redis.RedisChannelLayer"),
        (
            "channels_redis.pubsub.RedisPubSubChannelLayer",
            "narrows.layers.redis.RedisPubSubChannelLayer",
        ),
    ],
)
def test_channels_backend_path_suggests_the_narrows_one(backend: str, suggestion: str) -> None:
    with (
        override_settings(CHANNEL_LAYERS={"default": {"BACKEND": backend}}),
        pytest.raises(InvalidChannelLayerError, match=f'use "{suggestion}"'),
    ):
        get_channel_layer()


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({}, "No BACKEND"),
        ({"BACKEND": "narrows.layers.Nope"}, "has no 'Nope'"),
        ({"BACKEND": "nowhere.module.Layer"}, "Cannot import BACKEND 'nowhere.module.Layer'"),
        ({"BACKEND": "nodots"}, "dotted path"),
        ({"BACKEND": "narrows.layers.InMemoryChannelLayer", "ROUTING": "x"}, "ROUTING"),
        (
            {"BACKEND": "narrows.layers.InMemoryChannelLayer", "CONFIG": {"hostz": 1}},
            r"Bad CONFIG.*hostz",
        ),
    ],
)
def test_bad_configs_are_explained(config: dict[str, object], match: str) -> None:
    with (
        override_settings(CHANNEL_LAYERS={"default": config}),
        pytest.raises(InvalidChannelLayerError, match=match),
    ):
        get_channel_layer()


def test_missing_test_config_is_explained() -> None:
    with pytest.raises(InvalidChannelLayerError, match="No TEST_CONFIG"):
        channel_layers.make_test_backend("default")


def test_set_swaps_a_layer() -> None:
    replacement = InMemoryChannelLayer(capacity=5)
    old = channel_layers.set("default", replacement)
    try:
        assert get_channel_layer() is replacement
    finally:
        channel_layers.set("default", old)


def test_layers_import_without_django() -> None:
    code = (
        "import sys, narrows.layers, narrows.layers.redis\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'django')\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr
