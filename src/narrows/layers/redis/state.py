"""What the Redis layer keeps per event loop: clients, the receive loop, background tasks.

redis-py's asyncio connections belong to the loop that opened them, and
``async_to_sync(layer.group_send)`` runs each call in a fresh loop, so everything that
touches a connection or a task lives here, one ``LoopState`` per loop. The channels
themselves (buffers, memberships) are the layer's, shared by its loops
(``LocalChannels``).
"""

from __future__ import annotations

import asyncio
from typing import Any


class LoopState:
    def __init__(self, shards: int) -> None:
        self.clients: list[Any | None] = [None] * shards
        self.blocking_clients: list[Any | None] = [None] * shards
        self.receiver: asyncio.Task[None] | None = None
        self.background: set[asyncio.Future[Any]] = set()
        self.closing = False
        # Kept here: the loop only holds it weakly, and it must live as long as the loop.
        self.closer: Any = None

    def spawn(self, coro: Any) -> asyncio.Future[Any]:
        task: asyncio.Future[Any] = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    @property
    def receiving(self) -> bool:
        return self.receiver is not None and not self.receiver.done()
