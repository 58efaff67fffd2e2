"""``RedisPubSubChannelLayer``: channels_redis' pub/sub layer's name and constructor.

``CHANNEL_LAYERS`` that name ``channels_redis.pubsub.RedisPubSubChannelLayer`` (through
``narrows.install_as_channels()``) or ``narrows.layers.redis.RedisPubSubChannelLayer``
get narrows' list layer with the pub/sub layer's defaults. It keeps the pub/sub layer's
promises and adds delivery guarantees pub/sub lacks:

* send, receive, groups, flush, ``serialize()``/``deserialize()``, ``on_disconnect`` /
  ``on_reconnect`` message types, any serializable message (not only dicts);
* a message sent while a receiver is reconnecting, or before it started receiving, waits
  in Redis (up to ``expiry``) instead of being lost; full channels are counted and
  logged; narrows' list layer is faster than channels_redis' pub/sub layer in
  ``bench/layers.py`` on every workload.

Two differences: a message sent to a plain channel (not made by ``new_channel()``) goes
to one of its receivers, as in every other layer, not to each subscriber; and
``group_add()`` also accepts channels of other processes (pub/sub raises RuntimeError).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from narrows.layers.redis.core import RedisChannelLayer


def _require_serializable(message: Any) -> Any:
    if isinstance(message, dict) and "__asgi_channel__" in message:
        raise ValueError("Expected a message without the reserved key '__asgi_channel__'")
    return message


class RedisPubSubChannelLayer(RedisChannelLayer):
    def __init__(
        self,
        hosts: Sequence[Any] | None = None,
        prefix: str = "asgi",
        on_disconnect: str | None = None,
        on_reconnect: str | None = None,
        symmetric_encryption_keys: Sequence[str | bytes] | None = None,
        serializer_format: str = "msgpack",
        random_prefix_length: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            hosts=hosts,
            prefix=prefix,
            on_disconnect=on_disconnect,
            on_reconnect=on_reconnect,
            symmetric_encryption_keys=symmetric_encryption_keys,
            serializer_format=serializer_format,
            random_prefix_length=random_prefix_length,
            **kwargs,
        )

    _require_message = staticmethod(_require_serializable)

    async def new_channel(self, prefix: str = "specific.") -> str:
        return await super().new_channel(prefix)


__all__ = ["RedisPubSubChannelLayer"]
