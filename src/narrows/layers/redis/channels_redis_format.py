"""``"storage": "channels_redis"``: channels_redis 4.x's keys and message format.

With this CONFIG key, narrows' Redis layer reads and writes what channels_redis'
``RedisChannelLayer`` does, so a fleet moves to narrows one process at a time, Celery or
cron workers that ``group_send`` with channels_redis included:

* a channel is the sorted set ``{prefix}{name}`` (no separator; a process-local channel's
  name up to its ``!``) of serialized messages scored by send time: ``serializer_format``
  with ``random_prefix_length`` random bytes in front and Fernet encryption as
  channels_redis applies them, the full channel name (or, for a group message, the list
  of names) under ``__asgi_channel__``;
* a group is the sorted set ``{prefix}:group:{group}`` of full channel names scored by
  their join time;
* shards as channels_redis picks them: a group or process-local channel on
  ``_consistent_hash(name)``; a plain channel's messages go to the shards round-robin
  (so ``capacity`` counts per shard), and a receive tries the shards in turn. (A
  channels_redis receive waits on the one shard it picked until a message comes, so with
  several hosts a plain channel shared with channels_redis processes can stall there;
  process-local channels and groups are unaffected.)

channels_redis 4.3 sends a process-local channel's messages to the shard of the full
name but reads them from the shard of the name up to the ``!``, so with several hosts it
loses most of them; narrows writes where channels_redis reads and reads every shard.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import TYPE_CHECKING, Any

from narrows.layers import names
from narrows.layers.exceptions import ChannelFull
from narrows.layers.redis import scripts
from narrows.layers.redis.receiving import WAKE_CAPACITY
from narrows.layers.redis.state import LoopState

if TYPE_CHECKING:
    from narrows.layers.redis.core import RedisChannelLayer

logger = logging.getLogger("narrows.layers.redis")

Raw = tuple[bytes, float]  # (member, score): a serialized message and its send time


class ChannelsRedisStorage:
    def __init__(self, layer: RedisChannelLayer) -> None:
        self.layer = layer
        shards = len(layer.hosts)
        self._send_shards = itertools.cycle(range(shards))
        self._receive_shards = itertools.cycle(range(shards))
        self._expire_seconds = max(1, int(layer.expiry))
        self._group_expire_seconds = max(1, int(layer.group_expiry))

    def key(self, name: str) -> str:
        return f"{self.layer.prefix}{name}"

    def shard(self, name: str) -> int:
        return self.layer.ring.shard_for(name)  # channels_redis' (ChannelsRedisRing)

    def next_receive_shard(self) -> int:
        return next(self._receive_shards)

    def shared_pop_timeout(self, block_timeout: float) -> float:
        """A plain channel's receive waits on one shard at a time: a round of all the
        shards takes ``block_timeout``."""
        return max(0.1, block_timeout / len(self.layer.hosts))

    def pack(self, message: Any, channels: str | list[str] | None) -> bytes:
        if channels is not None:
            message = {**message, "__asgi_channel__": channels}
        packed: bytes = self.layer._serializer.serialize(message)
        return packed

    # Sending

    async def send(self, state: LoopState, channel: str, message: dict[str, Any]) -> None:
        layer = self.layer
        non_local = names.non_local_name(channel)
        if non_local != channel:
            shard, payload = self.shard(non_local), self.pack(message, channel)
        else:
            shard, payload = next(self._send_shards), self.pack(message, None)
        capacity = layer.get_capacity(channel)
        key = self.key(non_local)
        if not await self._push(state, shard, key, payload, capacity, f"send to {channel!r}"):
            layer.dropped["full"] += 1
            raise ChannelFull(channel, capacity)

    async def wake(self, state: LoopState, shard: int, key: str) -> None:
        """A message for no channel on ``key``: a receive loop popping it looks at its
        keys again. It may go over capacity: it is popped at once."""
        await self._push(state, shard, key, self.pack({}, []), WAKE_CAPACITY, "wake-up")

    async def _push(
        self, state: LoopState, shard: int, key: str, payload: bytes, capacity: int, what: str
    ) -> bool:
        """channels_redis' send steps (drop expired, check capacity, add, expire) in one
        round trip; False if the key was full."""
        now, expiry = time.time(), self._expire_seconds
        oldest = int(now) - int(self.layer.expiry)
        queued = await self.layer._execute(
            state,
            shard,
            lambda client: scripts.cr_send.run(
                client, 1, key, oldest, capacity, payload, now, expiry
            ),
            what,
        )
        return bool(queued)

    async def group_add(self, state: LoopState, group: str, channel: str) -> None:
        layer = self.layer
        key, shard, now = layer._group_key(group), self.shard(group), time.time()

        async def add(client: Any) -> Any:
            async with client.pipeline(transaction=False) as pipe:
                pipe.zadd(key, {channel: now})
                pipe.expire(key, self._group_expire_seconds)
                return await pipe.execute()

        await layer._execute(state, shard, add, f"group_add {group!r}")
        if layer._local.owns(names.non_local_name(channel)):
            layer._local.add_member(group, channel, now)
            layer._watch_shard(state, shard)

    async def group_discard(self, state: LoopState, group: str, channel: str) -> None:
        layer = self.layer
        key = layer._group_key(group)
        await layer._execute(
            state,
            self.shard(group),
            lambda client: client.zrem(key, channel),
            f"group_discard {group!r}",
        )
        layer._local.remove_member(group, channel)

    async def group_send(self, state: LoopState, group: str, message: dict[str, Any]) -> None:
        """One message per channel key (naming that key's member channels), one Lua call
        per shard, the shards at once; full keys are skipped, counted and logged."""
        layer = self.layer
        key, now = layer._group_key(group), time.time()

        async def members(client: Any) -> Any:
            async with client.pipeline(transaction=False) as pipe:
                pipe.zremrangebyscore(key, 0, int(now) - int(layer.group_expiry))
                pipe.zrange(key, 0, -1)
                return (await pipe.execute())[1]

        channels = [
            name.decode()
            for name in await layer._execute(
                state, self.shard(group), members, f"group_send {group!r}"
            )
        ]
        by_key: dict[str, list[str]] = {}
        for channel in channels:
            by_key.setdefault(self.key(names.non_local_name(channel)), []).append(channel)
        by_shard: dict[int, list[tuple[str, list[str]]]] = {}
        for channel_key, members_of_key in by_key.items():
            shard = self.shard(channel_key[len(layer.prefix) :])
            by_shard.setdefault(shard, []).append((channel_key, members_of_key))

        async def push(shard: int, entries: list[tuple[str, list[str]]]) -> list[str]:
            keys = [channel_key for channel_key, _ in entries]
            args: list[Any] = [self.pack(message, m) for _, m in entries]
            args += [layer.get_capacity(members_of_key[0]) for _, members_of_key in entries]
            args += [int(now) - int(layer.expiry), now, self._expire_seconds]
            full = await layer._execute(
                state,
                shard,
                lambda client: scripts.cr_group_send.run(client, len(keys), *keys, *args),
                f"group_send {group!r}",
            )
            return [keys[index - 1] for index in full]

        results = await asyncio.gather(*(push(s, e) for s, e in by_shard.items()))
        full = [channel_key for shard_full in results for channel_key in shard_full]
        if full:
            layer.dropped["full"] += len(full)
            logger.info(
                "%s of %s channels over capacity in group %s", len(full), len(channels), group
            )
            logger.debug("group %s: full channel keys %s", group, ", ".join(full[:20]))

    # Receiving

    async def pop_one(self, client: Any, key: str, timeout: float) -> Raw | None:
        result = await client.bzpopmin([key], timeout)
        return None if result is None else (bytes(result[1]), float(result[2]))

    async def give_back(self, client: Any, key: str, raw: Raw) -> None:
        await client.zadd(key, {raw[0]: raw[1]})

    async def pop_batch(
        self, client: Any, keys: list[str], timeout: float, count: int, multi: bool
    ) -> tuple[bytes, list[Raw]] | None:
        """Up to ``count`` messages from the first non-empty key (BZMPOP, Redis 7), or
        one (BZPOPMIN) when ``multi`` is False."""
        if multi:
            result = await client.bzmpop(timeout, len(keys), keys, min=True, count=count)
            if result is None:
                return None
            return bytes(result[0]), [(bytes(m), float(s)) for m, s in result[1]]
        one = await client.bzpopmin(keys, timeout)
        return None if one is None else (bytes(one[0]), [(bytes(one[1]), float(one[2]))])

    def open(self, raw: Raw, receiving_on: str) -> tuple[float, list[str], Any]:
        """(deadline, the channels it is for, message) of one stored message."""
        message = self.layer._serializer.deserialize(raw[0])
        target = message.pop("__asgi_channel__", None) if isinstance(message, dict) else None
        if isinstance(target, str):
            channels = [target]
        elif isinstance(target, list):
            channels = [str(channel) for channel in target]
        else:
            channels = [receiving_on]
        return raw[1] + self.layer.expiry, channels, message

    def flush_pattern(self) -> str:
        return f"{self.layer.prefix}*"


__all__ = ["ChannelsRedisStorage"]
