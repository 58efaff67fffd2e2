"""``RedisChannelLayer``: channels and groups in Redis, shared by many processes and machines.

Storage (``prefix`` defaults to ``"asgi"``):

* ``{prefix}:{channel}`` -- a Redis list of envelopes (see ``codec``) for a normal channel;
  ``{prefix}:{name}.{client}!`` -- one list per process for all its process-local channels,
  drained by that process's single receive loop (BLMPOP, up to 256 messages a round trip).
  Each push sets the list to expire ``expiry`` seconds after the last message.
* ``{prefix}:group:{group}`` -- a sorted set of the processes (and plain channels) with
  members, scored by their latest join (see ``groups``).

Each name lives on the shard the hash ring gives for its non-local part (its group name
for groups), so a channel is always read where it is written.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from redis import exceptions as redis_errors

from narrows.layers import names
from narrows.layers.base import BaseChannelLayer, CapacityPattern
from narrows.layers.exceptions import ChannelFull, ChannelLayerUnavailable
from narrows.layers.queues import LocalQueue
from narrows.layers.redis import scripts
from narrows.layers.redis.codec import Codec
from narrows.layers.redis.groups import GroupsMixin
from narrows.layers.redis.hashing import HashRing
from narrows.layers.redis.hosts import decode_hosts, make_client
from narrows.layers.redis.state import LoopState

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


class RedisChannelLayer(GroupsMixin, BaseChannelLayer):
    """Drop-in for ``channels_redis.core.RedisChannelLayer`` (same CONFIG keys) plus Cluster.

    ``retry_timeout``: how long a send/group operation keeps retrying while Redis is
    unreachable before raising ``ChannelLayerUnavailable``; receives wait for Redis
    indefinitely. ``block_timeout``: seconds a blocking pop waits before looping.
    ``receive_linger``: while messages keep coming, seconds the receive loop waits after a
    partial batch before popping again (0 disables), trading that much latency for
    batches.
    """

    def __init__(
        self,
        hosts: Sequence[Any] | None = None,
        prefix: str = "asgi",
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int]
        | Iterable[tuple[CapacityPattern, int]]
        | None = None,
        symmetric_encryption_keys: Sequence[str | bytes] | None = None,
        retry_timeout: float = 10.0,
        block_timeout: float = 5.0,
        receive_linger: float = 0.001,
        **kwargs: Any,
    ) -> None:
        # channels_redis keys with no meaning here, accepted so its settings work as they are.
        kwargs.pop("random_prefix_length", None)
        serializer = kwargs.pop("serializer_format", "msgpack")
        if serializer != "msgpack":
            raise ValueError(f"Expected serializer_format 'msgpack', got {serializer!r}")
        if kwargs:
            raise TypeError(f"RedisChannelLayer got unexpected CONFIG key(s) {sorted(kwargs)}")
        super().__init__(
            expiry=expiry,
            capacity=capacity,
            channel_capacity=channel_capacity,
            group_expiry=group_expiry,
        )
        if not isinstance(prefix, str) or not prefix:
            raise TypeError(f"Expected prefix to be a non-empty str, got {prefix!r}")
        self.prefix = prefix
        self.hosts = decode_hosts(hosts)
        self.ring = HashRing(len(self.hosts))
        self.codec = Codec(symmetric_encryption_keys, expiry)
        self.retry_timeout = retry_timeout
        self.block_timeout = block_timeout
        self.receive_linger = receive_linger
        self._expire_seconds = max(1, math.ceil(expiry))
        self._group_expire_seconds = max(1, math.ceil(group_expiry))
        # group_send runs as one Lua script when the script can do all the work the client
        # would: one plain server (Cluster forbids keys not named in KEYS) and one capacity
        # for all channels (patterns are Python regexes).
        self._one_trip_group_send = (
            len(self.hosts) == 1 and self.hosts[0].kind != "cluster" and not self.channel_capacity
        )
        self._last_loop_ref: Callable[[], asyncio.AbstractEventLoop | None] = lambda: None
        self._last_state: LoopState | None = None
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopState] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        hosts = ", ".join(spec.label for spec in self.hosts)
        return f"{type(self).__name__}(hosts=[{hosts}], prefix={self.prefix!r})"

    # Channel API

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        names.require_message(message)
        names.require_valid_channel_name(channel)
        state = self._state()
        non_local = names.non_local_name(channel)
        targets = channel[len(non_local) :] if non_local != channel else None
        payload = self.codec.envelope(
            time.time() + self.expiry, targets, self.codec.pack_message(message)
        )
        capacity = self.get_capacity(channel)
        key = self._key(non_local)
        queued = await self._execute(
            state,
            self.ring.shard_for(non_local),
            lambda client: scripts.send.run(
                client, 1, key, payload, capacity, self._expire_seconds
            ),
            f"send to {channel!r}",
        )
        if not queued:
            self.dropped["full"] += 1
            raise ChannelFull(channel, capacity)

    async def receive(self, channel: str) -> dict[str, Any]:
        """The next message on ``channel``; process-local channels must come from this
        layer's ``new_channel()`` in this event loop."""
        state = self._state()
        queue = state.local.get(channel)
        if queue is None:
            # First receive on this channel (or first since its queue was swept): check it.
            names.require_valid_channel_name(channel)
            if "!" not in channel:
                return await self._receive_shared(state, channel)
            non_local = names.non_local_name(channel)
            if not state.owns(non_local):
                raise ValueError(
                    f"Expected a channel from this layer's new_channel() in this event loop "
                    f"(...{state.client_prefix}!...), got {channel!r}"
                )
            if state.receiver is None or state.receiver.done():
                state.receiver = asyncio.ensure_future(self._receive_loop(state, non_local))
            queue = state.local[channel] = LocalQueue()
        elif state.receiver is None or state.receiver.done():
            non_local = names.non_local_name(channel)
            state.receiver = asyncio.ensure_future(self._receive_loop(state, non_local))
        if queue.messages:
            entry, expired = queue.pop_live(time.time())
            if expired:
                self._record_drop("expired", [channel], count=expired)
            if entry is not None:
                return entry[1]
        # An idle queue stays until the receive loop's sweep (at most a second): a consumer
        # receives again right after each message, and keeping its queue saves rebuilding
        # it per message.
        return (await queue.wait())[1]

    async def new_channel(self, prefix: str = "specific") -> str:
        state = self._state()
        return f"{prefix.rstrip('.')}.{state.client_prefix}!{next(state.counter):x}"

    # Flush extension

    async def flush(self) -> None:
        """Delete every key under ``prefix`` on every shard and drop locally buffered
        messages; receivers already waiting keep waiting."""
        state = self._state()
        for shard in range(len(self.hosts)):
            await self._execute(state, shard, self._delete_prefixed, "flush")
        for channel, queue in list(state.local.items()):
            queue.messages.clear()
            if queue.idle:
                del state.local[channel]
        state.clear_groups()

    async def close(self) -> None:
        """Stop this event loop's receive loop and close its connections.

        Not calling it is fine too: when the event loop ends through ``asyncio.run()`` (as
        every ``async_to_sync`` call's loop does), the connections are closed then.
        """
        await self._close_state(asyncio.get_running_loop())

    async def _close_state(self, loop: asyncio.AbstractEventLoop) -> None:
        state = self._states.pop(loop, None)
        if state is not None and self._last_state is state:
            self._last_state = None
        if state is None or state.closing:
            return
        state.closing = True
        tasks = list(state.background)
        if state.receiver is not None:
            state.receiver.cancel()
            tasks.append(state.receiver)
        pending: set[asyncio.Future[Any]] = set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=1)
        clients = [client for client in state.blocking_clients if client is not None]
        if pending:
            # A pop still stuck in redis-py after the cancel: closing its connections
            # ends it.
            await self._close_clients(clients)
            clients = []
            _, pending = await asyncio.wait(pending, timeout=2)
            for task in pending:
                logger.warning("%r: task %r did not stop on close()", self, task)
        await self._close_clients(clients + [c for c in state.clients if c is not None])

    async def _closed_with_loop(self, loop: asyncio.AbstractEventLoop) -> AsyncIterator[None]:
        """An async generator parked at its ``yield`` for the loop's lifetime: the loop's
        ``shutdown_asyncgens()`` (run by ``asyncio.run()`` before it closes the loop) closes
        it, and its ``finally`` closes the connections while the loop still runs."""
        try:
            yield
        finally:
            await self._close_state(loop)

    @staticmethod
    async def _close_clients(clients: list[Any]) -> None:
        for client in clients:
            try:
                await asyncio.wait_for(client.aclose(), 5)
            except Exception as exc:
                logger.debug("closing a Redis client failed: %r", exc)

    # Internals: state, keys, retries

    def _state(self) -> LoopState:
        loop = asyncio.get_running_loop()
        if loop is self._last_loop and self._last_state is not None:
            return self._last_state
        state = self._states.get(loop)
        if state is None:
            for other in [other for other in self._states if other.is_closed()]:
                self._states.pop(other, None)
            state = self._states[loop] = LoopState(len(self.hosts))
            state.closer = self._closed_with_loop(loop)
            state.spawn(_start(state.closer))
        # The last loop is kept by weak reference too (a closed loop may be collected).
        self._last_loop_ref = weakref.ref(loop)
        self._last_state = state
        return state

    @property
    def _last_loop(self) -> asyncio.AbstractEventLoop | None:
        return self._last_loop_ref()

    def _client(self, state: LoopState, shard: int) -> Any:
        client = state.clients[shard]
        if client is None:
            client = state.clients[shard] = make_client(self.hosts[shard])
        return client

    def _blocking_client(self, state: LoopState, shard: int) -> Any:
        """The client for blocking pops: its reads time out ``block_timeout + 10`` seconds
        in, so a reply lost with a half-dead connection is an error to retry, never a hang.
        (Commands use another client without that timeout: redis-py wraps every read and
        write of a client with a socket timeout in ``asyncio.wait_for``, a task each.)"""
        client = state.blocking_clients[shard]
        if client is None:
            client = state.blocking_clients[shard] = make_client(
                self.hosts[shard], socket_timeout=self.block_timeout + 10
            )
        return client

    def _key(self, non_local: str) -> str:
        return f"{self.prefix}:{non_local}"

    async def _execute(
        self,
        state: LoopState,
        shard: int,
        operation: Callable[[Any], Awaitable[T]],
        what: str,
    ) -> T:
        """Run ``operation(client)``, retrying while Redis is unreachable (restart,
        failover) for up to ``retry_timeout`` seconds."""
        deadline: float | None = None
        delay = 0.05
        while True:
            try:
                return await operation(self._client(state, shard))
            except RETRYABLE as exc:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.retry_timeout
                    logger.warning(
                        "Redis %s unreachable during %s (%s); retrying for up to %ss",
                        self.hosts[shard].label,
                        what,
                        exc,
                        self.retry_timeout,
                    )
                if now + delay > deadline:
                    raise ChannelLayerUnavailable(
                        f"Redis {self.hosts[shard].label} unreachable for "
                        f"{self.retry_timeout}s during {what}: {exc}"
                    ) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _delete_prefixed(self, client: Any) -> None:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{self.prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await self._unlink(client, batch)
                batch = []
        if batch:
            await self._unlink(client, batch)

    @staticmethod
    async def _unlink(client: Any, keys: list[bytes]) -> None:
        # One UNLINK for a single server; redis-py's cluster client splits it by slot.
        await client.unlink(*keys)

    # Receiving from shared (non-local) channels

    async def _receive_shared(self, state: LoopState, channel: str) -> dict[str, Any]:
        """BLPOP ``channel``'s list. The pop runs in its own task: if this receive is
        cancelled while a message is on its way, the message is pushed back to the head of
        the list for the next receiver instead of being lost."""
        key = self._key(channel)
        shard = self.ring.shard_for(channel)
        while True:
            task = state.spawn(self._pop_one(state, shard, key))
            try:
                raw = await asyncio.shield(task)
            except asyncio.CancelledError:
                task.add_done_callback(lambda done: self._give_back(state, shard, key, done))
                raise
            if raw is None:
                continue
            message = self._open_one(raw, channel)
            if message is not None:
                return message

    async def _pop_one(self, state: LoopState, shard: int, key: str) -> bytes | None:
        delay = 0.05
        failing = False
        while True:
            try:
                client = self._blocking_client(state, shard)
                result = await client.blpop([key], self.block_timeout)
            except RETRYABLE as exc:
                if state.closing:
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
                delay = min(delay * 2, 2.0)
                continue
            if failing:
                logger.warning("Reconnected to Redis %s", self.hosts[shard].label)
            return None if result is None else bytes(result[1])

    def _give_back(
        self, state: LoopState, shard: int, key: str, task: asyncio.Future[bytes | None]
    ) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        raw = task.result()
        if raw is not None:
            state.spawn(
                self._execute(state, shard, lambda client: client.lpush(key, raw), "requeue")
            )

    def _open_one(self, raw: bytes, channel: str) -> dict[str, Any] | None:
        try:
            deadline, _, message = self.codec.open(raw)
        except Exception as exc:
            self._record_drop(f"undecodable ({type(exc).__name__})", [channel])
            return None
        if deadline < time.time():
            self._record_drop("expired", [channel])
            return None
        return message

    # Receiving for process-local channels: one loop per event loop

    async def _receive_loop(self, state: LoopState, non_local: str) -> None:
        key = self._key(non_local)
        shard = self.ring.shard_for(non_local)
        label = self.hosts[shard].label
        delay = 0.05
        failing = False
        use_blmpop = True
        # ``closing`` as well as cancellation: redis-py can turn the CancelledError of a
        # pop cut short into a ConnectionError, which would otherwise mean "reconnect".
        while not state.closing:
            try:
                client = self._blocking_client(state, shard)
                if use_blmpop:
                    result = await client.blmpop(
                        self.block_timeout, 1, key, direction="LEFT", count=BATCH
                    )
                    batch = [] if result is None else result[1]
                else:
                    result = await client.blpop([key], self.block_timeout)
                    batch = [] if result is None else [result[1]]
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
                if state.closing:
                    return
                if not failing:
                    logger.warning(
                        "Lost Redis %s while receiving for %s (%s); reconnecting",
                        label,
                        non_local,
                        exc,
                    )
                failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if failing:
                logger.warning("Reconnected to Redis %s; receiving for %s again", label, non_local)
                failing = False
                delay = 0.05
            now = time.time()
            for raw in batch:
                self._dispatch(state, non_local, raw, now)
            if now >= state.next_sweep:
                state.next_sweep = now + min(1.0, self.expiry / 4)
                self._sweep_local(state, now)
            if 0 < len(batch) < BATCH and self.receive_linger:
                # Traffic is flowing: let a few more messages gather so the next pop
                # brings a batch instead of one message per round trip.
                await asyncio.sleep(self.receive_linger)

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
        loop = asyncio.get_running_loop()
        for index, channel in enumerate(channels):
            # Each channel gets its own dict, so one consumer changing it affects no other.
            entry = (deadline, message if index == 0 else dict(message))
            queue = state.local.get(channel)
            if queue is None:
                queue = state.local[channel] = LocalQueue()
            elif queue.hand_over(entry, loop):
                continue
            if len(queue.messages) >= self.get_capacity(channel):
                queue.messages.popleft()
                self._record_drop("evicted", [channel])
            queue.messages.append(entry)

    def _sweep_local(self, state: LoopState, now: float) -> None:
        """Drop locally buffered messages nobody received within ``expiry``; their channel
        is taken as dead and leaves the groups this process added it to."""
        for channel, queue in list(state.local.items()):
            expired = queue.drop_expired(now)
            if expired:
                self._record_drop("expired", [channel], count=expired)
                for group in list(state.channel_groups.get(channel, ())):
                    self._leave_locally(state, group, channel)
            if queue.idle:
                del state.local[channel]


async def _start(generator: AsyncIterator[None]) -> None:
    # The first step registers the generator with the loop's shutdown_asyncgens().
    await generator.__anext__()
