"""``channel_layers`` and ``get_channel_layer()``: layers built from Django's ``CHANNEL_LAYERS``.

This is the only part of ``narrows.layers`` that reads Django settings, and it imports
Django lazily, so a Django-less service can build ``RedisChannelLayer(...)`` directly.
"""

from __future__ import annotations

import importlib
from typing import Any

from narrows import DEFAULT_CHANNEL_LAYER
from narrows.layers.base import ChannelLayer
from narrows.layers.exceptions import InvalidChannelLayerError

#: Channels / channels_redis backends and the narrows class that replaces each.
CHANNELS_BACKENDS = {
    "channels.layers.InMemoryChannelLayer": "narrows.layers.InMemoryChannelLayer",
    "channels_redis.core.RedisChannelLayer": "narrows.layers.redis.RedisChannelLayer",
    "channels_redis.pubsub.RedisPubSubChannelLayer": "narrows.layers.redis.RedisPubSubChannelLayer",
}


def import_backend(path: str, alias: str) -> type[Any]:
    if not isinstance(path, str) or "." not in path:
        raise InvalidChannelLayerError(
            f'Expected CHANNEL_LAYERS["{alias}"]["BACKEND"] to be a dotted path like '
            f'"narrows.layers.InMemoryChannelLayer", got {path!r}'
        )
    module_path, _, class_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_path)
    except ImportError as exc:
        if path.split(".")[0] in {"channels", "channels_redis"}:
            # Channels is not installed and narrows.install_as_channels() was not called.
            suggestion = CHANNELS_BACKENDS.get(path, "narrows.layers.redis.RedisChannelLayer")
            raise InvalidChannelLayerError(
                f'CHANNEL_LAYERS["{alias}"]["BACKEND"] is the Channels path {path!r}, which '
                f'does not import ({exc}): use "{suggestion}" (same CONFIG keys), or call '
                "narrows.install_as_channels() at the top of settings.py"
            ) from exc
        raise InvalidChannelLayerError(
            f'Cannot import BACKEND {path!r} of CHANNEL_LAYERS["{alias}"]: {exc}'
        ) from exc
    try:
        backend: type[Any] = getattr(module, class_name)
    except AttributeError:
        raise InvalidChannelLayerError(
            f'Cannot import BACKEND {path!r} of CHANNEL_LAYERS["{alias}"]: '
            f"module {module_path!r} has no {class_name!r}"
        ) from None
    return backend


class ChannelLayerManager:
    """Builds each configured layer on first use and keeps it (one instance per alias)."""

    def __init__(self) -> None:
        self.backends: dict[str, Any] = {}
        self._connected = False

    def _reset_backends(self, setting: str, **kwargs: Any) -> None:
        if setting == "CHANNEL_LAYERS":
            self.backends = {}

    @property
    def configs(self) -> dict[str, Any]:
        from django.conf import settings  # lazy: layers work without Django
        from django.core.signals import setting_changed

        if not self._connected:
            setting_changed.connect(self._reset_backends, weak=False)
            self._connected = True
        configs = getattr(settings, "CHANNEL_LAYERS", {})
        if not isinstance(configs, dict):
            raise InvalidChannelLayerError(
                f"Expected settings.CHANNEL_LAYERS to be a dict, got {type(configs).__name__}"
            )
        return configs

    def _config(self, alias: str) -> dict[str, Any]:
        try:
            config = self.configs[alias]
        except KeyError:
            raise KeyError(f"CHANNEL_LAYERS has no {alias!r} layer") from None
        if not isinstance(config, dict):
            raise InvalidChannelLayerError(
                f'Expected CHANNEL_LAYERS["{alias}"] to be a dict, got {type(config).__name__}'
            )
        if "ROUTING" in config:
            raise InvalidChannelLayerError(
                f'CHANNEL_LAYERS["{alias}"] has a ROUTING key; routing is set in asgi.py '
                "(ProtocolTypeRouter), remove it"
            )
        return config

    def make_backend(self, alias: str) -> Any:
        config = self._config(alias)
        return self._make_backend(alias, config.get("CONFIG") or {})

    def make_test_backend(self, alias: str) -> Any:
        config = self._config(alias)
        if "TEST_CONFIG" not in config:
            raise InvalidChannelLayerError(f'No TEST_CONFIG in CHANNEL_LAYERS["{alias}"]')
        return self._make_backend(alias, config["TEST_CONFIG"] or {})

    def _make_backend(self, alias: str, options: Any) -> Any:
        config = self._config(alias)
        if "BACKEND" not in config:
            raise InvalidChannelLayerError(f'No BACKEND in CHANNEL_LAYERS["{alias}"]')
        backend = import_backend(config["BACKEND"], alias)
        if not isinstance(options, dict):
            raise InvalidChannelLayerError(
                f'Expected CHANNEL_LAYERS["{alias}"]["CONFIG"] to be a dict, '
                f"got {type(options).__name__}"
            )
        try:
            return backend(**options)
        except TypeError as exc:
            raise InvalidChannelLayerError(
                f'Bad CONFIG for CHANNEL_LAYERS["{alias}"] ({config["BACKEND"]}): {exc}'
            ) from exc

    def __getitem__(self, alias: str) -> Any:
        if alias not in self.backends:
            self.backends[alias] = self.make_backend(alias)
        return self.backends[alias]

    def __contains__(self, alias: object) -> bool:
        return alias in self.configs

    def set(self, alias: str, layer: ChannelLayer | None) -> Any:
        """Put ``layer`` under ``alias`` (tests swap layers this way); return the old one."""
        old = self.backends.get(alias)
        if layer is None:
            self.backends.pop(alias, None)
        else:
            self.backends[alias] = layer
        return old


channel_layers = ChannelLayerManager()


def get_channel_layer(alias: str = DEFAULT_CHANNEL_LAYER) -> ChannelLayer | None:
    """The layer configured as ``CHANNEL_LAYERS[alias]``, or ``None`` if there is none."""
    try:
        layer: ChannelLayer = channel_layers[alias]
    except KeyError:
        return None
    return layer
