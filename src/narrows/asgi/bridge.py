"""What a pool thread asks of the event loop while it serves a request: send, receive.

A sync view runs in a pool thread, but the ASGI ``send`` and ``receive`` callables belong
to the event loop. A :class:`LoopBridge` lets the thread call them and wait for the answer,
the way a WSGI server's thread writes to its socket: one message in flight, so a
streaming response or an upload is paced by the client (back-pressure end to end) and the
loop itself never waits for the thread.

It also watches for the client going away once the request body has been read, as
Django's ``listen_for_disconnect`` does: after ``http.disconnect`` every further
:meth:`LoopBridge.send` returns False at once (the thread stops iterating its response)
and the handler sends nothing more. Under narrows' own server, ``receive`` belongs to the
request's ``RequestResponseCycle``, whose ``disconnected`` flag is what a listening Task
would learn (after the body it answers nothing but ``http.disconnect``, and it wakes any
send or receive waiting on it), so the bridge reads the flag and starts no Task: a
listener costs each request a Task, its two steps and a turn on the GIL taken from the
pool thread while the view runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from narrows.server.http.cycle import RequestResponseCycle
from narrows.types import Message, Receive, Send

__all__ = ["ClientGone", "LoopBridge"]


class ClientGone(OSError):
    """The client disconnected (or the request was cancelled) before the body was read."""


class LoopBridge:
    __slots__ = (
        "_closed",
        "_cycle",
        "_listener",
        "_loop",
        "_pending",
        "_receive",
        "_send",
        "error",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, receive: Receive, send: Send) -> None:
        self._loop = loop
        self._receive = receive
        self._send = send
        self._closed = False
        #: narrows' own cycle behind ``receive``: its flag says the client is gone
        cycle = getattr(receive, "__self__", None)
        self._cycle = cycle if type(cycle) is RequestResponseCycle else None
        #: An unexpected message seen by the listener (Django raises AssertionError for it).
        self.error: BaseException | None = None
        self._listener: asyncio.Task[None] | None = None
        #: the thread's waits on the loop: True for a receive, False for a send
        self._pending: dict[concurrent.futures.Future[Any], bool] = {}

    @property
    def closed(self) -> bool:
        """True once the client is gone or the request was cancelled: nothing more is sent."""
        if self._closed:
            return True
        cycle = self._cycle
        return cycle is not None and cycle.disconnected

    # -- called from the pool thread ------------------------------------------------------

    def send(self, message: Message) -> bool:
        """Send ``message`` and wait until it is sent; False if the client is gone."""
        if self.closed:
            return False
        return bool(self._call(False, message))

    def receive(self) -> Message:
        """The next message of the request body; ``ClientGone`` if the client left."""
        if self.closed:
            raise ClientGone("the client disconnected before the request body was read")
        message: Message = self._call(True, None)
        if message["type"] == "http.disconnect":
            raise ClientGone("the client disconnected before the request body was read")
        return message

    def _call(self, receiving: bool, message: Message | None) -> Any:
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            self._loop.call_soon_threadsafe(self._start, receiving, message, done)
        except RuntimeError:  # the loop is closed: the server has stopped
            self._closed = True
            if receiving:
                raise ClientGone("the server stopped before the request body was read") from None
            return False
        return done.result()

    # -- on the event loop ------------------------------------------------------------------

    def _start(
        self, receiving: bool, message: Message | None, done: concurrent.futures.Future[Any]
    ) -> None:
        if self.closed:
            if receiving:
                done.set_exception(ClientGone("the client disconnected"))
            else:
                done.set_result(False)
            return
        self._pending[done] = receiving
        if receiving:
            self._loop.create_task(self._take(done))
        else:
            assert message is not None
            self._loop.create_task(self._deliver(message, done))

    async def _deliver(self, message: Message, done: concurrent.futures.Future[Any]) -> None:
        try:
            await self._send(message)
        except BaseException as exc:
            self._settle(done, exception=exc)
            if not isinstance(exc, Exception):
                raise
        else:
            self._settle(done, result=not self.closed)

    async def _take(self, done: concurrent.futures.Future[Any]) -> None:
        try:
            message = await self._receive()
        except BaseException as exc:
            self._closed = True
            self._settle(done, exception=ClientGone(f"receive() failed: {exc!r}"))
            if not isinstance(exc, Exception):
                raise
            return
        if message["type"] == "http.disconnect":
            self._closed = True
        elif message["type"] == "http.request" and not message.get("more_body", False):
            self.listen()
        self._settle(done, result=message)

    def _settle(
        self,
        done: concurrent.futures.Future[Any],
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._pending.pop(done, None)
        if done.done():
            return
        if exception is not None:
            done.set_exception(exception)
        else:
            done.set_result(result)

    def listen(self) -> None:
        """Watch for ``http.disconnect`` (call once the whole request body was received)."""
        if self._listener is None and self._cycle is None and not self.closed:
            self._listener = self._loop.create_task(self._listen())

    async def _listen(self) -> None:
        message = await self._receive()
        if message["type"] != "http.disconnect":
            self.error = AssertionError(
                "Invalid ASGI message after request body: {}".format(message["type"])
            )
        self.close()

    def close(self) -> None:
        """No more sends (the client left, or the request is over or cancelled)."""
        self._closed = True
        for done, receiving in list(self._pending.items()):
            if receiving:
                self._settle(done, exception=ClientGone("the client disconnected"))
            else:
                self._settle(done, result=False)

    def finish(self) -> None:
        """The response is complete: stop listening."""
        listener = self._listener
        if listener is not None and not listener.done():
            listener.cancel()
        self.close()
