"""Consistent hashing of channel and group names onto shards.

A ring of virtual nodes (``VNODES`` points per shard, CRC32 of ``"shard-i-v"``): adding or
removing one shard moves only about ``1/n`` of the names, unlike ``crc32(name) % n``.
Every process must list the same hosts in the same order to agree on the ring.
"""

from __future__ import annotations

import bisect
import zlib

VNODES = 160


class HashRing:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"Expected at least one Redis host, got {size}")
        self.size = size
        points = sorted(
            (zlib.crc32(f"shard-{shard}-{vnode}".encode()), shard)
            for shard in range(size)
            for vnode in range(VNODES)
        )
        self._hashes = [point for point, _ in points]
        self._shards = [shard for _, shard in points]

    def shard_for(self, name: str) -> int:
        if self.size == 1:
            return 0
        index = bisect.bisect(self._hashes, zlib.crc32(name.encode()))
        return self._shards[index % len(self._shards)]
