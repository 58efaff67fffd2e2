"""``InMemoryChannelLayer``: the layer for one process (development, tests, single-process sites).

How channels of consumers that went away are cleaned up (Channels' in-memory layer leaks them):

* A channel's queue exists only while it holds messages or has a ``receive()`` waiting:
  when the last receiver leaves (its task is cancelled because the consumer went away) and
  nothing is queued, the queue is deleted at once.
* An expiry sweep runs on ``receive()`` and ``group_send()`` (as in Channels), at most every
  ``min(1, expiry / 4)`` seconds, so a busy layer does not scan every channel per message.
  It drops messages nobody received within ``expiry`` seconds (counted in
  ``dropped["expired"]`` and logged), treats their channel as dead -- deletes its queue
  and removes it from every group -- and ends group memberships older than
  ``group_expiry``. So a consumer that died without ``group_discard`` stops costing memory
  and group traffic ``expiry`` seconds after its first unreceived message, not after
  ``group_expiry`` (a day).
* ``group_discard`` of a channel's last group, with nothing queued and nobody receiving,
  forgets the channel completely.
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Iterable, Mapping
from copy import deepcopy
from typing import Any

from narrows.layers import names
from narrows.layers.base import BaseChannelLayer, CapacityPattern
from narrows.layers.exceptions import ChannelFull
from narrows.layers.queues import Entry, LocalQueue

_ALPHABET = string.ascii_letters + string.digits


class InMemoryChannelLayer(BaseChannelLayer):
    """Channel layer in this process's memory; messages never leave the process.

    Messages are deep-copied on send, as in Channels, so a sender mutating its dict after
    ``send()`` does not change what receivers get.
    """

    def __init__(
        self,
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int]
        | Iterable[tuple[CapacityPattern, int]]
        | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise TypeError(
                f"InMemoryChannelLayer got unexpected CONFIG key(s) {sorted(kwargs)}; "
                "expected expiry, group_expiry, capacity, channel_capacity"
            )
        super().__init__(
            expiry=expiry,
            capacity=capacity,
            channel_capacity=channel_capacity,
            group_expiry=group_expiry,
        )
        self.channels: dict[str, LocalQueue] = {}
        self.groups: dict[str, dict[str, float]] = {}
        self._memberships: dict[str, set[str]] = {}
        self._sweep_interval = min(1.0, expiry / 4)
        self._next_sweep = 0.0

    # Channel API

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        names.require_message(message)
        names.require_valid_channel_name(channel)
        if not self._deliver(channel, (time.time() + self.expiry, deepcopy(message))):
            capacity = self.get_capacity(channel)
            self.dropped["full"] += 1
            raise ChannelFull(channel, capacity)
        self.messages_sent += 1

    async def receive(self, channel: str) -> dict[str, Any]:
        """Wait for the next message on ``channel``; several receivers take turns (FIFO)."""
        names.require_valid_channel_name(channel)
        self._sweep_if_due()
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = LocalQueue()
        entry, expired = queue.pop_live(time.time())
        if expired:
            self._record_drop("expired", [channel], count=expired)
        try:
            if entry is None:
                entry = await queue.wait()
            self.messages_received += 1
            return entry[1]
        finally:
            self._forget_if_idle(channel)

    async def new_channel(self, prefix: str = "specific.") -> str:
        suffix = "".join(secrets.choice(_ALPHABET) for _ in range(12))
        return f"{prefix.rstrip('.')}.inmemory!{suffix}"

    # Groups extension

    async def group_add(self, group: str, channel: str) -> None:
        names.require_valid_group_name(group)
        names.require_valid_channel_name(channel)
        self.groups.setdefault(group, {})[channel] = time.time()
        self._memberships.setdefault(channel, set()).add(group)

    async def group_discard(self, group: str, channel: str) -> None:
        names.require_valid_group_name(group)
        names.require_valid_channel_name(channel)
        self._leave(group, channel)
        self._forget_if_idle(channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        names.require_message(message)
        names.require_valid_group_name(group)
        self._sweep_if_due()
        members = self.groups.get(group)
        self.messages_sent += 1
        if not members:
            return
        deadline = time.time() + self.expiry
        full = [
            channel
            for channel in list(members)
            if not self._deliver(channel, (deadline, deepcopy(message)))
        ]
        if full:
            self._record_drop("full", full, group=group, count=len(full))

    # Flush extension

    async def flush(self) -> None:
        """Forget every message and group; receivers already waiting keep waiting."""
        for channel, queue in list(self.channels.items()):
            queue.messages.clear()
            if not queue.waiters:
                del self.channels[channel]
        self.groups.clear()
        self._memberships.clear()

    async def close(self) -> None:
        """Nothing to release: the layer holds no connections or tasks."""

    # Internals

    def _deliver(self, channel: str, entry: Entry) -> bool:
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = LocalQueue()
        elif queue.hand_over(entry):
            return True
        if len(queue.messages) >= self.get_capacity(channel):
            return False
        queue.messages.append(entry)
        return True

    def _leave(self, group: str, channel: str) -> None:
        members = self.groups.get(group)
        if members is not None:
            members.pop(channel, None)
            if not members:
                del self.groups[group]
        joined = self._memberships.get(channel)
        if joined is not None:
            joined.discard(group)
            if not joined:
                del self._memberships[channel]

    def _forget_if_idle(self, channel: str) -> None:
        queue = self.channels.get(channel)
        if queue is not None and queue.idle and channel not in self._memberships:
            del self.channels[channel]

    def _sweep_if_due(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self._sweep_interval
            self.sweep()

    def sweep(self) -> None:
        """Drop expired messages (their channel is treated as dead) and expired memberships."""
        now = time.time()
        for channel, queue in list(self.channels.items()):
            expired = queue.drop_expired(now)
            if expired:
                self._record_drop("expired", [channel], count=expired)
                for group in list(self._memberships.get(channel, ())):
                    self._leave(group, channel)
            if queue.idle:
                del self.channels[channel]
        oldest = now - self.group_expiry
        for group, members in list(self.groups.items()):
            for channel, joined in list(members.items()):
                if joined < oldest:
                    self._leave(group, channel)
