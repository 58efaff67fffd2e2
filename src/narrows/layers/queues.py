"""A queue of messages for one channel inside this process, with receivers waiting on it.

Used by ``InMemoryChannelLayer`` for every channel and by the Redis layer for its
process-local channels (``specific.XXX!suffix``).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from typing import Any

Entry = tuple[float, dict[str, Any]]  # (deadline, message)


class LocalQueue:
    """Messages as ``(deadline, message)`` in arrival order, plus receivers in FIFO order."""

    __slots__ = ("capacity", "messages", "waiters")

    def __init__(self, capacity: int | None = None) -> None:
        self.messages: deque[Entry] = deque()
        self.waiters: deque[asyncio.Future[Entry]] = deque()
        # Only the asyncio.Queue-style methods below use it; layers apply their own.
        self.capacity = capacity

    def hand_over(self, entry: Entry, running: asyncio.AbstractEventLoop | None = None) -> bool:
        """Give ``entry`` to the first receiver still waiting; False if there is none.

        ``running``: the caller's event loop, if it knows it (saves looking it up).
        """
        while self.waiters:
            waiter = self.waiters.popleft()
            if waiter.done():
                continue
            loop = waiter.get_loop()
            if running is None:
                try:
                    running = asyncio.get_running_loop()
                except RuntimeError:
                    pass
            if loop is running:
                waiter.set_result(entry)
            elif loop.is_closed():  # its receiver can never run again
                continue
            else:  # a receiver on another event loop (thread): wake it there
                loop.call_soon_threadsafe(_set_if_pending, waiter, entry)
            return True
        return False

    def pop_live(self, now: float) -> tuple[Entry | None, int]:
        """The oldest message whose deadline has not passed, and how many expired ones were
        dropped on the way."""
        expired = 0
        while self.messages:
            entry = self.messages.popleft()
            if entry[0] >= now:
                return entry, expired
            expired += 1
        return None, expired

    def register(self) -> asyncio.Future[Entry]:
        """A waiter for the next message handed over, queued behind earlier ones."""
        waiter: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return waiter

    async def wait(self) -> Entry:
        """Wait for the next message handed over by ``hand_over``."""
        return await self.wait_on(self.register())

    async def wait_on(self, waiter: asyncio.Future[Entry]) -> Entry:
        """Await a waiter from ``register``.

        If the waiting task is cancelled just after a message was handed to it, the
        message goes to the next receiver (or back to the front of the queue): a receiver
        that goes away never loses a message.
        """
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                entry = waiter.result()
                if not self.hand_over(entry):
                    self.messages.appendleft(entry)
            raise
        finally:
            # ``hand_over`` already took a waiter it resolved; only a cancelled one can be
            # left. (A failed ``deque.remove`` would format the future, message and all.)
            if not waiter.done() or waiter.cancelled():
                try:
                    self.waiters.remove(waiter)
                except ValueError:
                    pass

    def drop_expired(self, now: float) -> int:
        expired = 0
        while self.messages and self.messages[0][0] < now:
            self.messages.popleft()
            expired += 1
        return expired

    @property
    def idle(self) -> bool:
        return not self.messages and not self.waiters

    # The asyncio.Queue methods code written for channels_redis' ``receive_buffer`` uses.
    # A full queue drops its oldest message to take a new one, as channels_redis' does.

    def qsize(self) -> int:
        return len(self.messages)

    def empty(self) -> bool:
        return not self.messages

    def full(self) -> bool:
        return self.capacity is not None and len(self.messages) >= self.capacity

    def put_nowait(self, message: Any) -> None:
        entry = (math.inf, message)
        if self.hand_over(entry):
            return
        if self.full():
            self.messages.popleft()
        self.messages.append(entry)

    def get_nowait(self) -> Any:
        if not self.messages:
            raise asyncio.QueueEmpty
        return self.messages.popleft()[1]

    async def get(self) -> Any:
        if self.messages:
            return self.messages.popleft()[1]
        return (await self.wait())[1]


class ReceiveBuffer(dict[str, LocalQueue]):
    """Channel name -> ``LocalQueue``; looking up a missing channel creates its queue
    with the channel's capacity (what channels_redis' ``receive_buffer`` does)."""

    def __init__(self, capacity_for: Callable[[str], int]) -> None:
        super().__init__()
        self.capacity_for = capacity_for

    def __missing__(self, channel: str) -> LocalQueue:
        queue = self[channel] = LocalQueue(self.capacity_for(channel))
        return queue


def _set_if_pending(waiter: asyncio.Future[Entry], entry: Entry) -> None:
    if not waiter.done():
        waiter.set_result(entry)
