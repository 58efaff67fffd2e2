"""Group memberships survive a Redis that restarted empty or failed over.

A group's members live in Redis (``{prefix}:group:{group}``); a Redis restarted without
persistence, or a replica promoted before it had every write, has lost them, and the
group's members would stop receiving ``group_send`` with no error. Each layer knows its
own memberships (``LocalChannels``), so it puts them back: it remembers each shard's
``run_id`` (a new one per Redis start, another server's after a failover) and, when the
run_id changes, re-adds its memberships of the groups on that shard. The run_id is read
when the receive loop gets its connection back (before ``on_reconnect`` is sent), after
a command that failed succeeds again, and by the receive loop every ``CHECK_INTERVAL``
seconds for shards it has no other news of. A new run_id also sends ``on_reconnect``:
the connection was lost, though redis-py may have hidden it (a receive loop that
reconnected sends its own only when its check found none).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from narrows.layers.redis.state import LoopState

if TYPE_CHECKING:
    from narrows.layers.redis.hashing import Ring
    from narrows.layers.redis.hosts import HostSpec
    from narrows.layers.redis.local import LocalChannels

logger = logging.getLogger("narrows.layers.redis")

CHECK_INTERVAL = 2.0
BATCH = 500


class MembershipsMixin:
    if TYPE_CHECKING:
        hosts: list[HostSpec]
        ring: Ring
        group_expiry: float
        _local: LocalChannels
        _cr: Any
        _group_expire_seconds: int
        on_reconnect: str | None

        def _client(self, state: LoopState, shard: int) -> Any: ...
        def _notify_local(self, message_type: str | None) -> None: ...
        def _group_key(self, group: str) -> bytes: ...

    def _membership_shards(self) -> set[int]:
        return {self.ring.shard_for(group) for group in self._local.group_members}

    def _watch_shard(self, state: LoopState, shard: int) -> None:
        """Learn ``shard``'s run_id soon if it is not known yet (a first membership)."""
        if shard not in self._local.run_ids:
            state.spawn(self._check_shards(state, {shard}))

    def _check_due(self, state: LoopState, now: float) -> None:
        """From the receive loop: check the shards with memberships now and then."""
        local = self._local
        if now >= local.next_check and local.group_members:
            local.next_check = now + CHECK_INTERVAL
            state.spawn(self._check_shards(state, self._membership_shards()))

    async def _check_shards(self, state: LoopState, shards: set[int]) -> None:
        """Read each shard's run_id; re-add the memberships on shards whose run_id
        changed since it was last read, then send ``on_reconnect`` to the local channels:
        Redis restarted, though no receive may have seen the connection drop (redis-py
        replaces a pooled connection the server closed without an error)."""
        local = self._local
        for shard in sorted(shards - local.checking):
            local.checking.add(shard)
            try:
                run_id = await self._run_id(state, shard)
                if run_id is None:
                    continue  # unreachable: checked again on reconnect or next round
                known = local.run_ids.get(shard)
                local.run_ids[shard] = run_id
                if known is not None and known != run_id:
                    try:
                        await self._restore(state, shard)
                    except Exception as exc:
                        local.run_ids[shard] = known  # so the next check tries again
                        logger.warning(
                            "Re-adding memberships on Redis %s failed (%r); will retry",
                            self.hosts[shard].label,
                            exc,
                        )
                    else:
                        local.restart_notices += 1
                        self._notify_local(self.on_reconnect)
            finally:
                local.checking.discard(shard)

    async def _check_shards_now(self, state: LoopState, shards: set[int]) -> None:
        """``_check_shards``, and wait for checks of the same shards already under way
        (started by another event loop or task) to finish."""
        await self._check_shards(state, shards)
        deadline = time.monotonic() + 10
        while self._local.checking & shards and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def _run_id(self, state: LoopState, shard: int) -> Any:
        info: Any = None
        for attempt in range(3):
            try:
                info = await self._client(state, shard).info("server")
                break
            except Exception as exc:
                # The first command after a restart meets the pool's dead connection.
                logger.debug("reading the run_id of Redis %s: %r", self.hosts[shard], exc)
                await asyncio.sleep(0.05 * (attempt + 1))
        if info is None:
            return None
        if "run_id" in info:
            return info["run_id"]
        # Redis Cluster: one answer per node; any node's restart changes the whole.
        return tuple(sorted(str(node.get("run_id")) for node in info.values()))

    async def _restore(self, state: LoopState, shard: int) -> None:
        oldest = time.time() - self.group_expiry
        entries = [
            (self._group_key(group), {name: at for name, at in members.items() if at >= oldest})
            # channels_redis storage: the group sets hold channel names, not process lists
            for group, members in self._local.memberships(by_channel=self._cr is not None).items()
            if self.ring.shard_for(group) == shard
        ]
        entries = [(key, members) for key, members in entries if members]
        logger.warning(
            "Redis %s restarted or failed over (new run_id); re-adding this process's "
            "members of %d group(s)",
            self.hosts[shard].label,
            len(entries),
        )
        client = self._client(state, shard)
        for start in range(0, len(entries), BATCH):
            async with client.pipeline(transaction=False) as pipe:
                for key, members in entries[start : start + BATCH]:
                    pipe.zadd(key, members)
                    pipe.expire(key, self._group_expire_seconds)
                await pipe.execute()


__all__ = ["CHECK_INTERVAL", "MembershipsMixin"]
