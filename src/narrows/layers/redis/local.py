"""The process-local channels of one Redis layer: their buffers and group memberships.

One ``LocalChannels`` per layer instance, shared by every event loop that uses the layer
(as in channels_redis, a channel made by ``new_channel()`` in one loop can be received on
in another: ``async_to_sync`` runs each call in a loop of its own). Process-local channels
are ``<prefix>.<client_prefix>!<suffix>``; each ``prefix`` has its own process list
``<prefix>.<client_prefix>!`` in Redis. Receive loops in several loops (threads) may
dispatch into the same buffers, so the steps that check and then change a buffer or a
membership hold ``lock`` (uncontended in the common one-loop case).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from typing import Any

from narrows.layers import names
from narrows.layers.queues import ReceiveBuffer


class LocalChannels:
    def __init__(self, client_prefix: str, capacity_for: Callable[[str], int]) -> None:
        self.client_prefix = client_prefix
        self.marker = f".{client_prefix}!"
        self.counter = itertools.count(1)
        self.buffers = ReceiveBuffer(capacity_for)
        self.lock = threading.Lock()
        # The process lists, one per new_channel() prefix ("specific.<id>!", "chat.<id>!"):
        # Redis key -> non-local name. A receive loop pops them all.
        self.lists: dict[str, str] = {}
        # group -> process list -> {channel: joined at}, and channel -> groups. A group
        # message popped from one list is for that list's members of the group.
        self.group_members: dict[str, dict[str, dict[str, float]]] = {}
        self.channel_groups: dict[str, set[str]] = {}
        self.next_sweep = 0.0
        # Shard -> the run_id of the Redis that holds this layer's memberships there, the
        # shards being checked now, and when the receive loop checks next (memberships).
        self.run_ids: dict[int, Any] = {}
        self.checking: set[int] = set()
        self.next_check = 0.0
        # How many times a new run_id sent on_reconnect: the receive loop that reconnects
        # sends its own only if its check found no restart (one notice per reconnect).
        self.restart_notices = 0
        # The event loop whose receive loop pops the lists (one at a time keeps order).
        self.receiving_loop: asyncio.AbstractEventLoop | None = None

    def owns(self, non_local: str) -> bool:
        return non_local.endswith(self.marker)

    def new_name(self, prefix: str) -> tuple[str, str]:
        """A fresh channel name for ``prefix``, and its process list."""
        non_local = f"{prefix.rstrip('.')}{self.marker}"
        return f"{non_local}{next(self.counter):x}", non_local

    # Buffers

    def deliver(
        self,
        channels: list[str],
        deadline: float,
        message: Any,
        loop: asyncio.AbstractEventLoop,
    ) -> list[str]:
        """Hand the message to each channel's first waiting receiver or buffer it there
        (each channel gets its own dict, so one consumer changing it affects no other);
        the channels whose full buffer dropped its oldest message to make room."""
        evicted: list[str] = []
        buffers = self.buffers
        copies = isinstance(message, dict)
        with self.lock:
            for index, channel in enumerate(channels):
                entry = (deadline, dict(message) if index and copies else message)
                queue = buffers.get(channel)
                if queue is None:
                    queue = buffers[channel]
                elif queue.hand_over(entry, loop):
                    continue
                if queue.full():
                    queue.messages.popleft()
                    evicted.append(channel)
                queue.messages.append(entry)
        return evicted

    def sweep(self, now: float) -> list[tuple[str, int]]:
        """Drop messages past their deadline; (channel, count) for each channel that had
        some. Idle buffers are deleted."""
        expired: list[tuple[str, int]] = []
        with self.lock:
            for channel, queue in list(self.buffers.items()):
                count = queue.drop_expired(now)
                if count:
                    expired.append((channel, count))
                if queue.idle:
                    del self.buffers[channel]
        return expired

    def clear_buffers(self) -> None:
        with self.lock:
            for channel, queue in list(self.buffers.items()):
                queue.messages.clear()
                if queue.idle:
                    del self.buffers[channel]

    def active_channels(self) -> set[str]:
        """Channels with a receiver, a buffered message or a group membership."""
        with self.lock:
            return set(self.buffers) | set(self.channel_groups)

    # Group memberships

    def members(self, group: str, non_local: str) -> list[tuple[str, float]]:
        """(channel, joined at) of this layer's members of ``group`` on list ``non_local``."""
        with self.lock:
            lists = self.group_members.get(group)
            members = None if lists is None else lists.get(non_local)
            return list(members.items()) if members else []

    def member_channels(self, group: str) -> set[str]:
        with self.lock:
            lists = list(self.group_members.get(group, {}).values())
            return {channel for members in lists for channel in members}

    def memberships(self, by_channel: bool = False) -> dict[str, dict[str, float]]:
        """group -> process list (or, ``by_channel``, channel) -> latest join, for
        re-adding them all to Redis."""
        with self.lock:
            if by_channel:
                return {
                    group: {c: at for members in lists.values() for c, at in members.items()}
                    for group, lists in self.group_members.items()
                }
            return {
                group: {non_local: max(members.values()) for non_local, members in lists.items()}
                for group, lists in self.group_members.items()
            }

    def add_member(self, group: str, channel: str, joined: float) -> None:
        non_local = names.non_local_name(channel)
        with self.lock:
            self.group_members.setdefault(group, {}).setdefault(non_local, {})[channel] = joined
            self.channel_groups.setdefault(channel, set()).add(group)

    def remove_member(self, group: str, channel: str) -> bool:
        """Forget one membership; True if the channel's process list has no member of the
        group left (so the list's entry can leave the group in Redis)."""
        non_local = names.non_local_name(channel)
        with self.lock:
            left = True
            lists = self.group_members.get(group)
            if lists is not None:
                members = lists.get(non_local)
                if members is not None:
                    members.pop(channel, None)
                    if members:
                        left = False
                    else:
                        del lists[non_local]
                if not lists:
                    del self.group_members[group]
            groups = self.channel_groups.get(channel)
            if groups is not None:
                groups.discard(group)
                if not groups:
                    del self.channel_groups[channel]
            return left

    def groups_of(self, channel: str) -> list[str]:
        with self.lock:
            return list(self.channel_groups.get(channel, ()))

    def clear_groups(self) -> None:
        with self.lock:
            self.group_members.clear()
            self.channel_groups.clear()


__all__ = ["LocalChannels"]
