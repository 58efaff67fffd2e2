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
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from narrows.layers import names
from narrows.layers.base import BaseChannelLayer, CapacityPattern
from narrows.layers.exceptions import ChannelFull, ChannelLayerUnavailable
from narrows.layers.queues import ReceiveBuffer
from narrows.layers.redis import scripts
from narrows.layers.redis.channels_redis_format import ChannelsRedisStorage
from narrows.layers.redis.codec import Codec
from narrows.layers.redis.groups import GroupsMixin
from narrows.layers.redis.hashing import ChannelsRedisRing, HashRing, Ring
from narrows.layers.redis.hosts import decode_hosts, make_client
from narrows.layers.redis.local import LocalChannels
from narrows.layers.redis.memberships import MembershipsMixin
from narrows.layers.redis.receiving import RETRYABLE, ReceivingMixin
from narrows.layers.redis.serializers import MsgPackSerializer, registry
from narrows.layers.redis.state import LoopState

logger = logging.getLogger("narrows.layers.redis")

T = TypeVar("T")

STORAGES = ("narrows", "channels_redis")


class ForeignChannelError(ValueError, AssertionError):
    """``receive()`` on a process-local channel that another layer (process) made.

    Also an ``AssertionError``: channels_redis asserts, and code catches that."""


class RedisChannelLayer(GroupsMixin, ReceivingMixin, MembershipsMixin, BaseChannelLayer):
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
        serializer_format: str = "msgpack",
        random_prefix_length: int = 12,
        on_disconnect: str | None = None,
        on_reconnect: str | None = None,
        storage: str = "narrows",
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected CONFIG key(s) {sorted(kwargs)}")
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
        if storage not in STORAGES:
            raise ValueError(f"Expected storage to be one of {STORAGES}, got {storage!r}")
        if storage == "channels_redis" and self.hosts[0].kind == "cluster":
            raise ValueError(
                "storage 'channels_redis' takes plain and Sentinel hosts, got a Redis "
                "Cluster (channels_redis has no Cluster support)"
            )
        self.storage = storage
        # Groups and channels on the shards channels_redis would pick, in its storage.
        self.ring: Ring = (
            ChannelsRedisRing(len(self.hosts))
            if storage == "channels_redis"
            else HashRing(len(self.hosts))
        )
        # serialize()/deserialize(): the configured serializer, as channels_redis builds it.
        self._serializer = registry.get_serializer(
            serializer_format,
            symmetric_encryption_keys=symmetric_encryption_keys,
            random_prefix_length=random_prefix_length,
            expiry=expiry,
        )
        # Stored messages: narrows' envelope (encrypted as a whole), whose message part is
        # inline msgpack or the bytes of another serializer_format.
        body = None
        if type(self._serializer) is not MsgPackSerializer:
            body = registry.get_serializer(serializer_format, expiry=expiry)
        self.codec = Codec(symmetric_encryption_keys, expiry, body)
        for name, hook in (("on_disconnect", on_disconnect), ("on_reconnect", on_reconnect)):
            if hook is not None and not isinstance(hook, str):
                raise TypeError(
                    f"Expected {name} to be a message type (str) sent to every local "
                    f"channel, got {type(hook).__name__}"
                )
        self.on_disconnect = on_disconnect
        self.on_reconnect = on_reconnect
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
        # Process-local channels are "<prefix>.<client_prefix>!<suffix>".
        self.client_prefix = uuid.uuid4().hex
        self._local = LocalChannels(self.client_prefix, self.get_capacity)
        # channels_redis' keys and format, for fleets with channels_redis processes.
        self._cr = ChannelsRedisStorage(self) if storage == "channels_redis" else None
        self._last_loop_ref: Callable[[], asyncio.AbstractEventLoop | None] = lambda: None
        self._last_state: LoopState | None = None
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopState] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        hosts = ", ".join(spec.label for spec in self.hosts)
        return f"{type(self).__name__}(hosts=[{hosts}], prefix={self.prefix!r})"

    # Channel API

    _require_message = staticmethod(names.require_message)

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        self._require_message(message)
        names.require_valid_channel_name(channel)
        state = self._state()
        if self._cr is not None:
            await self._cr.send(state, channel, message)
            self.messages_sent += 1
            return
        non_local = names.non_local_name(channel)
        targets = channel[len(non_local) :] if non_local != channel else None
        payload = self.codec.envelope(
            time.time() + self.expiry, targets, self.codec.pack_message(message)
        )
        capacity = self.get_capacity(channel)
        shard, key = self._locate(non_local)
        queued = await self._execute(
            state,
            shard,
            lambda client: scripts.send.run(
                client, 1, key, payload, capacity, self._expire_seconds
            ),
            f"send to {channel!r}",
        )
        if not queued:
            self.dropped["full"] += 1
            raise ChannelFull(channel, capacity)
        self.messages_sent += 1

    async def receive(self, channel: str) -> dict[str, Any]:
        """The next message on ``channel``; process-local channels must come from this
        layer's ``new_channel()`` (in any event loop)."""
        # One coroutine per receive (no wrapper counting around it): this is the hot path.
        state = self._state()
        local = self._local
        if channel not in local.buffers:
            # A plain channel, or the first receive on a local one (or the first since its
            # buffer was swept).
            non_local = names.non_local_name(channel)
            names.require_valid_channel_name(channel)
            if non_local == channel:
                message = await self._receive_shared(state, channel)
                self.messages_received += 1
                return message
            if not local.owns(non_local):
                raise ForeignChannelError(
                    f"Expected a channel from this layer's new_channel() "
                    f"(...{local.marker}...), got {channel!r}"
                )
            self._watch(state, non_local)
        receiver = state.receiver
        if receiver is None or receiver.done():
            self._ensure_receiving(state)
        with local.lock:  # the receive loop may deliver from another thread
            queue = local.buffers[channel]
            entry, expired = queue.pop_live(time.time()) if queue.messages else (None, 0)
            if entry is None:
                waiter = queue.register()
        if expired:
            self._record_drop("expired", [channel], count=expired)
        if entry is None:
            # An idle buffer stays until the receive loop's sweep (at most a second): a
            # consumer receives again right after each message, and keeping its buffer
            # saves rebuilding it per message.
            entry = await queue.wait_on(waiter)
        self.messages_received += 1
        return entry[1]

    async def new_channel(self, prefix: str = "specific") -> str:
        state = self._state()
        channel, non_local = self._local.new_name(prefix)
        self._watch(state, non_local)
        return channel

    def serialize(self, message: Any) -> bytes:
        """``message`` as the configured serializer writes it (``serializer_format``,
        ``symmetric_encryption_keys``, ``random_prefix_length``)."""
        data: bytes = self._serializer.serialize(message)
        return data

    def deserialize(self, message: bytes) -> Any:
        return self._serializer.deserialize(message)

    @property
    def receive_buffer(self) -> ReceiveBuffer:
        """Process-local channel -> its buffer of messages received from Redis and not yet
        taken (asyncio.Queue methods: ``qsize``, ``get_nowait``...), as in
        channels_redis."""
        return self._local.buffers

    # Flush extension

    async def flush(self) -> None:
        """Delete every key under ``prefix`` on every shard and drop locally buffered
        messages and memberships; receivers already waiting keep waiting."""
        state = self._state()
        for shard in range(len(self.hosts)):
            await self._execute(state, shard, self._delete_prefixed, "flush")
        self._local.clear_buffers()
        self._local.clear_groups()

    async def close(self) -> None:
        """Stop this event loop's receive loop and close its connections.

        Not calling it is fine too: when the event loop ends through ``asyncio.run()`` (as
        every ``async_to_sync`` call's loop does), the connections are closed then.
        """
        await self._close_state(asyncio.get_running_loop())

    async def close_pools(self) -> None:
        """channels_redis' name for ``close()``."""
        await self.close()

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

    def _list_shard(self, non_local: str) -> int:
        """The shard of a process list ``<prefix>.<client>!``: the one for ``<client>!``,
        so all the lists of one event loop share a shard (and one blocking pop)."""
        return self.ring.shard_for(non_local[non_local.rfind(".") + 1 :])

    def _list_key(self, non_local: str) -> str:
        if self._cr is not None:
            return self._cr.key(non_local)
        if self.hosts[0].kind == "cluster":
            # A hash tag keeps all the lists of one event loop in one slot.
            cut = non_local.rfind(".") + 1
            return f"{self.prefix}:{non_local[:cut]}{{{non_local[cut:]}}}"
        return f"{self.prefix}:{non_local}"

    def _locate(self, non_local: str) -> tuple[int, str]:
        """The shard and the key of a plain channel or of a process list."""
        if non_local.endswith("!"):
            return self._list_shard(non_local), self._list_key(non_local)
        return self.ring.shard_for(non_local), self._key(non_local)

    async def _execute(
        self,
        state: LoopState,
        shard: int,
        operation: Callable[[Any], Awaitable[T]],
        what: str,
    ) -> T:
        """Run ``operation(client)``, retrying while Redis is unreachable (restart,
        failover) for up to ``retry_timeout`` seconds.

        A cancel that arrives during the operation is raised even when redis-py swallowed
        it (or turned it into a connection error): a caller's loop of sends must stop
        when its task is cancelled, or ``asyncio.run()`` never returns.
        """
        deadline: float | None = None
        delay = 0.05
        task = asyncio.current_task()
        cancels = 0 if task is None else task.cancelling()
        while True:
            try:
                result = await operation(self._client(state, shard))
            except RETRYABLE as exc:
                if task is not None and task.cancelling() > cancels:
                    raise asyncio.CancelledError from exc
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
                continue
            if task is not None and task.cancelling() > cancels:
                raise asyncio.CancelledError
            if deadline is not None and self._local.group_members:
                # Redis is back: it may have restarted empty (memberships).
                state.spawn(self._check_shards(state, {shard}))
            return result

    async def _delete_prefixed(self, client: Any) -> None:
        batch: list[bytes] = []
        pattern = f"{self.prefix}:*" if self._cr is None else self._cr.flush_pattern()
        async for key in client.scan_iter(match=pattern, count=1000):
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


async def _start(generator: AsyncIterator[None]) -> None:
    # The first step registers the generator with the loop's shutdown_asyncgens().
    await generator.__anext__()
