"""What the Redis layer keeps per event loop: clients, local channels, the receive loop.

redis-py's asyncio connections belong to the loop that opened them, and
``async_to_sync(layer.group_send)`` runs each call in a fresh loop, so everything that
touches a connection or a future lives here, one ``LoopState`` per loop.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

from narrows.layers.queues import LocalQueue


class LoopState:
    def __init__(self, shards: int) -> None:
        self.clients: list[Any | None] = [None] * shards
        self.blocking_clients: list[Any | None] = [None] * shards
        # Process-local channels of this loop are "<prefix>.<client_prefix>!<suffix>".
        self.client_prefix = uuid.uuid4().hex
        self.marker = f".{self.client_prefix}!"
        self.counter = itertools.count(1)
        self.local: dict[str, LocalQueue] = {}
        # Group memberships of this loop's channels: group -> {channel: joined at}, and the
        # reverse index channel -> groups. Group messages name the group; these say which
        # local channels get them.
        self.group_members: dict[str, dict[str, float]] = {}
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

    def add_member(self, group: str, channel: str, joined: float) -> None:
        self.group_members.setdefault(group, {})[channel] = joined
        self.channel_groups.setdefault(channel, set()).add(group)

    def remove_member(self, group: str, channel: str) -> bool:
        """Forget one membership; True if the group has no local member left."""
        members = self.group_members.get(group)
        if members is not None:
            members.pop(channel, None)
            if not members:
                del self.group_members[group]
        groups = self.channel_groups.get(channel)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self.channel_groups[channel]
        return group not in self.group_members

    def clear_groups(self) -> None:
        self.group_members.clear()
        self.channel_groups.clear()
