"""channels_redis' ``utils`` names that code outside the layer imports.

``_consistent_hash`` is channels_redis' shard choice (``hashing.ChannelsRedisRing``, the
ring of the channels_redis storage format, so narrows and channels_redis processes pick
the same shards);
``decode_hosts`` and ``create_pool`` keep channels_redis' shapes (narrows' own host
parsing is ``narrows.layers.redis.hosts``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from narrows.layers.redis import hosts
from narrows.layers.redis.hashing import channels_redis_shard


def _consistent_hash(value: str | bytes, ring_size: int) -> int:
    """channels_redis' shard for ``value``: CRC32 to 0..4095, then one of ``ring_size``
    equal slices."""
    return channels_redis_shard(value, ring_size)


async def _close_redis(connection: Any) -> None:
    """Close a redis-py client and its connection pool."""
    await connection.aclose(close_connection_pool=True)


def decode_hosts(entries: Sequence[Any] | None) -> list[dict[str, Any]]:
    """``hosts`` as a list of redis-py keyword dicts, as channels_redis returns them."""
    if not entries:
        return [{"address": hosts.DEFAULT_HOSTS[0]}]
    if isinstance(entries, str | bytes):
        raise ValueError(
            f"Expected hosts to be a list of Redis hosts, got the single string {entries!r}"
        )
    decoded: list[dict[str, Any]] = []
    for entry in entries:
        if isinstance(entry, dict):
            decoded.append(entry)
        elif isinstance(entry, tuple | list):
            decoded.append({"host": entry[0], "port": entry[1]})
        else:
            decoded.append({"address": entry})
    return decoded


def create_pool(host: dict[str, Any]) -> Any:
    """A redis-py connection pool for one ``decode_hosts`` entry."""
    spec = hosts.decode_hosts([host])[0]
    return hosts.make_client(spec).connection_pool


__all__ = ["_close_redis", "_consistent_hash", "create_pool", "decode_hosts"]
