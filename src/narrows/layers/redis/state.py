"""What the Redis layer keeps per event loop: clients, local channels, the receive loop.

redis-py's asyncio connections belong to the loop that opened them, and
``async_to_sync(layer.group_send)`` runs each call in a fresh loop, so everything that
touches a connection or a future lives here, one ``LoopState`` per loop.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from narrows.layers import names
from narrows.layers.queues import ReceiveBuffer


class LoopState:
    def __init__(self, shards: int, client_prefix: str, capacity_for: Callable[[str], int]) -> None:
        self.clients: list[Any | None] = [None] * shards
        self.blocking_clients: list[Any | None] = [None] * shards
        # Process-local channels of this loop are "<prefix>.<client_prefix>!<suffix>".
        self.client_prefix = client_prefix
        self.marker = f".{client_prefix}!"
        self.counter = itertools.count(1)
        self.local = ReceiveBuffer(capacity_for)
        # The process lists of this loop, one per new_channel() prefix ("specific.<id>!",
        # "chat.<id>!"...): Redis key -> non-local name. The receive loop pops them all.
        self.lists: dict[str, str] = {}
        # Group memberships of this loop's channels: group -> process list -> {channel:
        # joined at}, and the reverse index channel -> groups. A group message popped from
        # one list is for that list's members of the group.
        self.group_members: dict[str, dict[str, dict[str, float]]] = {}
        self.channel_groups: dict[str, set[str]] = {}
        self.receiver: asyncio.Task[None] | None = None
        self.background: set[asyncio.Future[Any]] = set()
        self.next_sweep = 0.0
        self.closing = False
        # Kept here: the loop only holds it weakly, and it must live as long as the loop.
        self.closer: Any = None

    def spawn(self, coro: Any) -> asyncio.Future[Any]:
        task: asyncio.Future[Any] = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def owns(self, non_local: str) -> bool:
        return non_local.endswith(self.marker)

    def members(self, group: str, non_local: str) -> dict[str, float] | None:
        """This loop's channels in ``group`` that receive through the list ``non_local``."""
        lists = self.group_members.get(group)
        return None if lists is None else lists.get(non_local)

    def member_channels(self, group: str) -> set[str]:
        return {c for members in self.group_members.get(group, {}).values() for c in members}

    def add_member(self, group: str, channel: str, joined: float) -> None:
        non_local = names.non_local_name(channel)
        self.group_members.setdefault(group, {}).setdefault(non_local, {})[channel] = joined
        self.channel_groups.setdefault(channel, set()).add(group)

    def remove_member(self, group: str, channel: str) -> bool:
        """Forget one membership; True if the channel's process list has no member of the
        group left (so the list's entry can leave the group in Redis)."""
        non_local = names.non_local_name(channel)
        lists = self.group_members.get(group)
        left = True
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

    def clear_groups(self) -> None:
        self.group_members.clear()
        self.channel_groups.clear()
