"""Consistent hashing of channel and group names onto shards.

A ring of virtual nodes (``VNODES`` points per shard, 64-bit BLAKE2b of ``"shard-i-v"``): adding or
removing one shard moves only about ``1/n`` of the names, unlike ``crc32(name) % n``.
Every process must list the same hosts in the same order to agree on the ring.
``ChannelsRedisRing`` is channels_redis' choice instead, for the ``"channels_redis"``
storage: processes of both kinds then put each name on the same shard.
"""

from __future__ import annotations

import binascii
import bisect
import hashlib
from typing import Protocol

VNODES = 160


class Ring(Protocol):
    size: int

    def shard_for(self, name: str) -> int: ...


class HashRing:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"Expected at least one Redis host, got {size}")
        self.size = size
        points = sorted(
            (_hash(f"shard-{shard}-{vnode}"), shard)
            for shard in range(size)
            for vnode in range(VNODES)
        )
        self._hashes = [point for point, _ in points]
        self._shards = [shard for _, shard in points]

    def shard_for(self, name: str) -> int:
        if self.size == 1:
            return 0
        index = bisect.bisect(self._hashes, _hash(name))
        return self._shards[index % len(self._shards)]


def _hash(name: str) -> int:
    # CRC32 clusters similar short names (``room.1``, ``room.2``...) on one shard.
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")


def channels_redis_shard(value: str | bytes, size: int) -> int:
    """channels_redis' shard for ``value``: CRC32 to 0..4095, then one of ``size`` equal
    slices."""
    if size == 1:
        return 0
    data = value.encode("utf8") if isinstance(value, str) else value
    return int((binascii.crc32(data) & 0xFFF) / (4096 / float(size)))


class ChannelsRedisRing:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"Expected at least one Redis host, got {size}")
        self.size = size

    def shard_for(self, name: str) -> int:
        return channels_redis_shard(name, self.size)
