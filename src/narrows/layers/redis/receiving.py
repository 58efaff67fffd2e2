"""Receiving for the Redis layer: blocking pops for shared channels, one receive loop per
event loop for process-local channels.

A loop's process-local channels are ``<prefix>.<client>!<suffix>``; every ``prefix``
given to ``new_channel()`` has its own process list ``<prefix>.<client>!`` (so capacity is
per list, as in channels_redis). All the lists of one loop live on one shard, and the
loop's receive loop pops them all in one ``BLMPOP`` (rotating their order so a busy list
cannot starve the others). A list created while that pop blocks is added by waking the
loop with a small envelope pushed to a list it already watches.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from redis import exceptions as redis_errors

from narrows.layers.redis import scripts
from narrows.layers.redis.state import LoopState

if TYPE_CHECKING:
    from narrows.layers.redis.channels_redis_format import ChannelsRedisStorage
    from narrows.layers.redis.codec import Codec
    from narrows.layers.redis.hosts import HostSpec
    from narrows.layers.redis.local import LocalChannels

logger = logging.getLogger("narrows.layers.redis")

T = TypeVar("T")

# Errors after which the same command can succeed once Redis is back (restart, failover).
RETRYABLE: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    OSError,
)
BATCH = 256
# A wake-up envelope may go over a list's capacity: it is popped at once.
WAKE_CAPACITY = 2**31


def cancelling(task: asyncio.Task[Any] | None) -> bool:
    """True once ``task`` was asked to stop. redis-py can swallow the CancelledError of a
    command cut short (the command then returns normally), so loops that issue command
    after command check this after each one instead of relying on the exception."""
    return task is not None and task.cancelling() > 0


class ReceivingMixin:
    if TYPE_CHECKING:
        hosts: list[HostSpec]
        codec: Codec
        _local: LocalChannels
        _cr: ChannelsRedisStorage | None
        expiry: float
        block_timeout: float
        receive_linger: float
        on_disconnect: str | None
        on_reconnect: str | None
        _expire_seconds: int

        def _blocking_client(self, state: LoopState, shard: int) -> Any: ...
        def _record_drop(
            self, reason: str, channels: list[str], group: str | None = ..., count: int = ...
        ) -> None: ...
        def _group_targets(
            self, state: LoopState, non_local: str, targets: dict[str, Any], now: float
        ) -> list[str]: ...
        def _leave_locally(self, state: LoopState, group: str, channel: str) -> None: ...
        def _list_shard(self, non_local: str) -> int: ...
        def _list_key(self, non_local: str) -> str: ...
        def _locate(self, non_local: str) -> tuple[int, str]: ...
        def _state(self) -> LoopState: ...
        def _membership_shards(self) -> set[int]: ...
        def _check_due(self, state: LoopState, now: float) -> None: ...
        async def _check_shards_now(self, state: LoopState, shards: set[int]) -> None: ...
        async def _execute(
            self,
            state: LoopState,
            shard: int,
            operation: Callable[[Any], Awaitable[T]],
            what: str,
        ) -> T: ...

    # Shared (non-local) channels: a blocking pop per receive

    async def _receive_shared(self, state: LoopState, channel: str) -> dict[str, Any]:
        """Pop ``channel``'s list (BLPOP; channels_redis storage: BZPOPMIN, trying each
        shard in turn as channels_redis does). The pop runs in its own task: if this
        receive is cancelled while a message is on its way, the message is put back at
        the head for the next receiver instead of being lost."""
        cr = self._cr
        shard, key = self._locate(channel) if cr is None else (0, cr.key(channel))
        while True:
            if cr is not None:
                shard = cr.next_receive_shard()
            task = state.spawn(self._pop_one(state, shard, key))
            try:
                raw = await asyncio.shield(task)
            except asyncio.CancelledError:
                task.add_done_callback(functools.partial(self._give_back, state, shard, key))
                raise
            if raw is None:
                continue
            message: dict[str, Any] | None = self._open_one(raw, channel)
            if message is not None:
                return message

    async def _pop_one(self, state: LoopState, shard: int, key: str) -> Any:
        """One message from ``key``, or None after ``block_timeout`` (or on close)."""
        me = asyncio.current_task()
        delay = 0.05
        failing = False
        while True:
            try:
                client = self._blocking_client(state, shard)
                raw: Any
                if self._cr is not None:
                    timeout = self._cr.shared_pop_timeout(self.block_timeout)
                    raw = await self._cr.pop_one(client, key, timeout)
                else:
                    result = await client.blpop([key], self.block_timeout)
                    raw = None if result is None else bytes(result[1])
            except RETRYABLE as exc:
                if state.closing or cancelling(me):
                    return None
                if not failing:
                    logger.warning(
                        "Lost Redis %s while receiving on %s (%s); reconnecting",
                        self.hosts[shard].label,
                        key,
                        exc,
                    )
                failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if failing:
                logger.warning("Reconnected to Redis %s", self.hosts[shard].label)
            if raw is None and cancelling(me):
                raise asyncio.CancelledError
            return raw

    def _give_back(self, state: LoopState, shard: int, key: str, task: asyncio.Future[Any]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        raw = task.result()
        if raw is None:
            return
        cr = self._cr
        if cr is not None:
            put_back = self._execute(state, shard, lambda c: cr.give_back(c, key, raw), "requeue")
        else:
            put_back = self._execute(state, shard, lambda c: c.lpush(key, raw), "requeue")
        state.spawn(put_back)

    def _open_one(self, raw: Any, channel: str) -> Any:
        """The message in ``raw``, or None if it cannot be decoded or has expired."""
        try:
            if self._cr is not None:
                deadline, _, message = self._cr.open(raw, channel)
            else:
                deadline, _, message = self.codec.open(raw)
        except Exception as exc:
            self._record_drop(f"undecodable ({type(exc).__name__})", [channel])
            return None
        if deadline < time.time():
            self._record_drop("expired", [channel])
            return None
        return message

    # Process-local channels: one receive loop per event loop, all its lists

    def _watch(self, state: LoopState, non_local: str) -> None:
        """Make ``non_local`` one of the lists the receive loops pop; wake a running
        receive loop so its next pop includes it."""
        local = self._local
        key = self._list_key(non_local)
        with local.lock:
            if key in local.lists:
                return
            watched = next(iter(local.lists), None)
            local.lists[key] = non_local
            running = local.receiving_loop is not None
        if watched is not None and running:
            state.spawn(self._wake(state, watched))

    async def _wake(self, state: LoopState, key: str) -> None:
        cr = self._cr
        if cr is not None:  # a receive loop per shard: wake each
            for shard in range(len(self.hosts)):
                await cr.wake(state, shard, key)
            return
        payload = self.codec.envelope(time.time() + self.expiry, {"wake": 1}, b"\x80")
        await self._execute(
            state,
            self._list_shard(self._local.lists[key]),
            lambda client: scripts.send.run(
                client, 1, key, payload, WAKE_CAPACITY, self._expire_seconds
            ),
            "wake the receive loop",
        )

    def _ensure_receiving(self, state: LoopState) -> None:
        """Start a receive loop here unless one runs in a running event loop already.

        One at a time per layer, so each channel's messages are dispatched in order; a
        receive loop in another event loop (thread) hands messages to this loop's
        receivers, and when it stops, a loop still waiting takes over."""
        local = self._local
        loop = asyncio.get_running_loop()
        with local.lock:
            owner = local.receiving_loop
            if owner is loop and state.receiving:
                return
            if owner is not None and owner is not loop and owner.is_running():
                return
            local.receiving_loop = loop
        state.receiver = asyncio.ensure_future(self._receive_loop(state))

    def _take_over_receiving(self) -> None:
        # Scheduled in an event loop with receivers waiting (call_soon_threadsafe).
        self._ensure_receiving(self._state())

    async def _receive_loop(self, state: LoopState) -> None:
        local = self._local
        loop = asyncio.get_running_loop()
        if self._cr is None:
            shards = [self._list_shard(local.marker[1:])]
        else:  # channels_redis senders may have written to any shard
            shards = list(range(len(self.hosts)))
        try:
            await asyncio.gather(*(self._receive_lists(state, shard) for shard in shards))
        finally:
            with local.lock:
                if local.receiving_loop is loop:
                    local.receiving_loop = None
                waiting = {
                    waiter.get_loop()
                    for queue in local.buffers.values()
                    for waiter in queue.waiters
                    if not waiter.done()
                }
            for other in waiting - {loop}:
                if other.is_running():
                    other.call_soon_threadsafe(self._take_over_receiving)

    async def _receive_lists(self, state: LoopState, shard: int) -> None:
        local = self._local
        cr = self._cr
        me = asyncio.current_task()
        process = local.marker[1:]
        label = self.hosts[shard].label
        delay = 0.05
        failing = False
        use_blmpop = True
        turn = 0
        # ``closing`` as well as cancellation: redis-py can turn the CancelledError of a
        # pop cut short into a ConnectionError, or swallow it and return.
        while not state.closing and not cancelling(me):
            keys = list(local.lists)
            turn = (turn + 1) % len(keys)
            keys = keys[turn:] + keys[:turn]
            try:
                client = self._blocking_client(state, shard)
                if cr is not None:
                    popped = await cr.pop_batch(client, keys, self.block_timeout, BATCH, use_blmpop)
                elif use_blmpop:
                    result = await client.blmpop(
                        self.block_timeout, len(keys), *keys, direction="LEFT", count=BATCH
                    )
                    popped = None if result is None else (result[0], result[1])
                else:
                    result = await client.blpop(keys, self.block_timeout)
                    popped = None if result is None else (result[0], [result[1]])
            except asyncio.CancelledError:
                raise
            except redis_errors.ResponseError as exc:
                if use_blmpop and "unknown command" in str(exc).lower():
                    use_blmpop = False  # Redis < 7.0
                    continue
                logger.error("Redis %s rejected the receive loop's pop: %s", label, exc)
                await asyncio.sleep(1.0)
                continue
            except Exception as exc:
                if state.closing or cancelling(me):
                    return
                if not failing:
                    logger.warning(
                        "Lost Redis %s while receiving for %s (%s); reconnecting",
                        label,
                        process,
                        exc,
                    )
                    self._notify_local(self.on_disconnect)
                failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if failing:
                logger.warning("Reconnected to Redis %s; receiving for %s again", label, process)
                # Memberships first, so a consumer reacting to on_reconnect finds them.
                notices = local.restart_notices
                await self._check_shards_now(state, self._membership_shards())
                if local.restart_notices == notices:  # no check found a restart and sent it
                    self._notify_local(self.on_reconnect)
                failing = False
                delay = 0.05
            now = time.time()
            if popped is not None:
                non_local = local.lists.get(popped[0].decode(), "")
                dispatch: Any = self._dispatch if cr is None else self._dispatch_stored
                for raw in popped[1]:
                    dispatch(state, non_local, raw, now)
            if now >= local.next_sweep:
                local.next_sweep = now + min(1.0, self.expiry / 4)
                self._sweep_local(state, now)
            self._check_due(state, now)
            if popped is not None and len(popped[1]) < BATCH and self.receive_linger:
                # Traffic is flowing: let a few more messages gather so the next pop
                # brings a batch instead of one message per round trip.
                await asyncio.sleep(self.receive_linger)

    def _notify_local(self, message_type: str | None) -> None:
        """``on_disconnect`` / ``on_reconnect``: a message of that type to every local
        channel (a consumer handles it like any event, e.g. to re-sync its state)."""
        if message_type is None:
            return
        channels = sorted(self._local.active_channels())
        if channels:
            deadline = time.time() + self.expiry
            message = {"type": message_type}
            self._local.deliver(channels, deadline, message, asyncio.get_running_loop())

    def _dispatch(self, state: LoopState, non_local: str, raw: bytes, now: float) -> None:
        try:
            deadline, targets, message = self.codec.open(raw)
        except Exception as exc:
            self._record_drop(f"undecodable ({type(exc).__name__})", [non_local])
            return
        if isinstance(targets, str):
            channels = [non_local + targets]
        elif isinstance(targets, dict):
            channels = self._group_targets(state, non_local, targets, now)
        else:
            channels = [non_local]
        if not channels:
            return
        if deadline < now:
            self._record_drop("expired", channels, count=len(channels))
            return
        evicted = self._local.deliver(channels, deadline, message, asyncio.get_running_loop())
        if evicted:
            self._record_drop("evicted", evicted, count=len(evicted))

    def _dispatch_stored(self, state: LoopState, non_local: str, raw: Any, now: float) -> None:
        """``_dispatch`` for the channels_redis storage: the message names its channels."""
        cr = self._cr
        if cr is None:
            return
        try:
            deadline, channels, message = cr.open(raw, non_local)
        except Exception as exc:
            self._record_drop(f"undecodable ({type(exc).__name__})", [non_local])
            return
        if not channels:
            return  # a wake-up
        if deadline < now:
            self._record_drop("expired", channels, count=len(channels))
            return
        evicted = self._local.deliver(channels, deadline, message, asyncio.get_running_loop())
        if evicted:
            self._record_drop("evicted", evicted, count=len(evicted))

    def _sweep_local(self, state: LoopState, now: float) -> None:
        """Drop locally buffered messages nobody received within ``expiry``; their channel
        is taken as dead and leaves the groups this process added it to."""
        for channel, count in self._local.sweep(now):
            self._record_drop("expired", [channel], count=count)
            for group in self._local.groups_of(channel):
                self._leave_locally(state, group, channel)


__all__ = ["BATCH", "RETRYABLE", "ReceivingMixin", "cancelling"]
