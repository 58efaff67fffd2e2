"""Groups for the Redis layer: membership by process, fan-out by process.

``{prefix}:group:{group}`` is a sorted set of *non-local* names -- the process list
``specific.<client>!`` of each process with members (one per ``new_channel()`` prefix
in use), or a plain channel name -- scored by their latest join. Each process keeps the
channel-level membership of its own channels (``LoopState.group_members``). A group_send
therefore pushes one envelope per process list (naming the group) and one per plain
channel: the work and the bytes do not grow with the number of members, and the
receiving process fans out locally to the list's members.

A process that adds or discards *another* process's channel also pushes a small control
envelope into that process's list, ahead of any later group message, so the owner's view
stays exact.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from narrows.layers import names
from narrows.layers.exceptions import ChannelFull
from narrows.layers.redis import scripts
from narrows.layers.redis.state import LoopState

if TYPE_CHECKING:
    from narrows.layers.redis.channels_redis_format import ChannelsRedisStorage
    from narrows.layers.redis.codec import Codec, Targets
    from narrows.layers.redis.hashing import Ring
    from narrows.layers.redis.local import LocalChannels

T = TypeVar("T")

logger = logging.getLogger("narrows.layers.redis")


class GroupsMixin:
    if TYPE_CHECKING:
        prefix: str
        expiry: float
        group_expiry: float
        capacity: int
        codec: Codec
        ring: Ring
        _local: LocalChannels
        _cr: ChannelsRedisStorage | None
        dropped: Any
        messages_sent: int
        _expire_seconds: int
        _group_expire_seconds: int
        _one_trip_group_send: bool

        def _state(self) -> LoopState: ...
        def _require_message(self, message: Any) -> Any: ...
        def _watch_shard(self, state: LoopState, shard: int) -> None: ...
        def _locate(self, non_local: str) -> tuple[int, str]: ...
        def get_capacity(self, channel: str) -> int: ...
        def _record_drop(
            self, reason: str, channels: list[str], group: str | None = ..., count: int = ...
        ) -> None: ...
        async def _execute(
            self,
            state: LoopState,
            shard: int,
            operation: Callable[[Any], Awaitable[T]],
            what: str,
        ) -> T: ...

    def _group_key(self, group: str) -> bytes:
        return f"{self.prefix}:group:{group}".encode()

    async def group_add(self, group: str, channel: str) -> None:
        names.require_valid_group_name(group)
        names.require_valid_channel_name(channel)
        state = self._state()
        if self._cr is not None:
            await self._cr.group_add(state, group, channel)
            return
        non_local = names.non_local_name(channel)
        now = time.time()
        mine = non_local != channel and self._local.owns(non_local)
        if mine:
            self._local.add_member(group, channel, now)
        key = self._group_key(group)

        async def add(client: Any) -> Any:
            async with client.pipeline(transaction=False) as pipe:
                # Expired entries are deleted here; group_send skips them until then.
                pipe.zremrangebyscore(key, 0, now - self.group_expiry)
                pipe.zadd(key, {non_local: now})
                pipe.expire(key, self._group_expire_seconds)
                return await pipe.execute()

        shard = self.ring.shard_for(group)
        await self._execute(state, shard, add, f"group_add {group!r}")
        if mine:
            self._watch_shard(state, shard)
        if non_local != channel and not mine:
            suffix = channel[len(non_local) :]
            control = {"add": group, "channel": suffix, "at": now}
            await self._push_control(state, channel, non_local, control)

    async def group_discard(self, group: str, channel: str) -> None:
        names.require_valid_group_name(group)
        names.require_valid_channel_name(channel)
        state = self._state()
        if self._cr is not None:
            await self._cr.group_discard(state, group, channel)
            return
        non_local = names.non_local_name(channel)
        if non_local == channel:
            await self._forget_in_group(state, group, channel, None)
        elif self._local.owns(non_local):
            if self._local.remove_member(group, channel):
                await self._forget_in_group(state, group, non_local, time.time())
        else:
            control = {"discard": group, "channel": channel[len(non_local) :]}
            await self._push_control(state, channel, non_local, control)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Send to every member: one envelope per process with members (and per plain
        channel). On one plain Redis server without capacity patterns this is one Lua
        script, one round trip; otherwise one round trip for the group's entries, then one
        pipeline per shard, all shards at once. A full list is skipped, counted in
        ``dropped["full"]`` and logged (INFO, as channels_redis does: "1 of 3 channels over
        capacity in group room"; the full lists' names at DEBUG)."""
        self._require_message(message)
        names.require_valid_group_name(group)
        state = self._state()
        self.messages_sent += 1
        if self._cr is not None:
            await self._cr.group_send(state, group, message)
            return
        packed = self.codec.pack_message(message)
        deadline = time.time() + self.expiry
        to_process = self.codec.envelope(deadline, {"group": group}, packed)
        to_channel = self.codec.envelope(deadline, None, packed)
        oldest = time.time() - self.group_expiry
        key = self._group_key(group)
        shard = self.ring.shard_for(group)
        if self._one_trip_group_send:
            result = await self._execute(
                state,
                shard,
                lambda client: scripts.group_send.run(
                    client,
                    1,
                    key,
                    oldest,
                    f"{self.prefix}:",
                    to_process,
                    to_channel,
                    self._expire_seconds,
                    self.capacity,
                ),
                f"group_send {group!r}",
            )
            total, full = int(result[0]), [name.decode() for name in result[1:]]
        else:
            entries = await self._execute(
                state,
                shard,
                lambda client: client.zrangebyscore(key, oldest, "+inf"),
                f"group_send {group!r}",
            )
            total = len(entries)
            full = await self._push_to_entries(
                state, group, [entry.decode() for entry in entries], to_process, to_channel
            )
        if full:
            # channels_redis' log line and level; the counter is narrows' own.
            self.dropped["full"] += len(full)
            logger.info("%s of %s channels over capacity in group %s", len(full), total, group)
            logger.debug("group %s: full channel lists %s", group, ", ".join(full[:20]))

    async def _push_to_entries(
        self,
        state: LoopState,
        group: str,
        entries: list[str],
        to_process: bytes,
        to_channel: bytes,
    ) -> list[str]:
        by_shard: dict[int, list[tuple[str, str]]] = {}
        for name in entries:
            shard, key = self._locate(name)
            by_shard.setdefault(shard, []).append((name, key))

        async def push(shard: int, shard_names: list[tuple[str, str]]) -> list[str]:
            calls = [
                (
                    1,
                    key,
                    to_process if name.endswith("!") else to_channel,
                    self.get_capacity(name),
                    self._expire_seconds,
                )
                for name, key in shard_names
            ]
            queued = await self._execute(
                state,
                shard,
                lambda client: scripts.send.run_many(client, calls),
                f"group_send {group!r}",
            )
            return [name for ok, (name, _) in zip(queued, shard_names, strict=True) if not ok]

        results = await asyncio.gather(*(push(shard, ns) for shard, ns in by_shard.items()))
        return [name for shard_full in results for name in shard_full]

    async def _push_control(
        self, state: LoopState, channel: str, non_local: str, control: dict[str, Any]
    ) -> None:
        payload = self.codec.envelope(time.time() + self.expiry, control, b"\x80")
        capacity = self.get_capacity(channel)
        shard, key = self._locate(non_local)
        queued = await self._execute(
            state,
            shard,
            lambda client: scripts.send.run(
                client, 1, key, payload, capacity, self._expire_seconds
            ),
            f"group membership of {channel!r}",
        )
        if not queued:
            self.dropped["full"] += 1
            raise ChannelFull(channel, capacity)

    async def _forget_in_group(
        self, state: LoopState, group: str, name: str, decided_at: float | None
    ) -> None:
        """Remove ``name`` from the group in Redis; a process entry only if no join scored
        it after ``decided_at``."""
        key = self._group_key(group)
        await self._execute(
            state,
            self.ring.shard_for(group),
            lambda client: (
                client.zrem(key, name)
                if decided_at is None
                else scripts.forget.run(client, 1, key, name, decided_at)
            ),
            f"group_discard {group!r}",
        )

    def _leave_locally(self, state: LoopState, group: str, channel: str) -> None:
        """Drop one local membership; when the group has no local member left, remove this
        process from the group in Redis (in the background when called from the loop)."""
        if self._cr is not None:  # channels_redis storage: the group names the channel
            state.spawn(self._cr.group_discard(state, group, channel))
            return
        if self._local.remove_member(group, channel):
            non_local = names.non_local_name(channel)
            state.spawn(self._forget_in_group(state, group, non_local, time.time()))

    def _group_targets(
        self, state: LoopState, non_local: str, targets: dict[str, Any], now: float
    ) -> list[str]:
        """Channels of this process a group/control envelope popped from the list
        ``non_local`` is for (control and wake-up envelopes: none)."""
        group = targets.get("group")
        if group is not None:
            members = self._local.members(group, non_local)
            oldest = now - self.group_expiry
            live = [channel for channel, joined in members if joined >= oldest]
            if len(live) < len(members):
                for channel, joined in members:
                    if joined < oldest:
                        self._leave_locally(state, group, channel)
            return live
        if "add" in targets:
            self._local.add_member(targets["add"], non_local + targets["channel"], targets["at"])
        elif "discard" in targets:
            self._leave_locally(state, targets["discard"], non_local + targets["channel"])
        return []


__all__ = ["GroupsMixin", "Targets"]
