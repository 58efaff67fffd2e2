"""``AsyncHttpConsumer``: an HTTP consumer for long-poll and server-sent-event style responses."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

from narrows.consumer import AsyncConsumer
from narrows.exceptions import StopConsumer
from narrows.types import Message, Receive, Scope, Send

__all__ = ["AsyncHttpConsumer"]

HeadersArg = Iterable[tuple[bytes, bytes]] | Mapping[bytes, bytes] | None


class ResponseState(enum.Enum):
    """Where the consumer's HTTP response is."""

    NOT_STARTED = "not started"  # nothing sent yet
    STREAMING = "streaming"  # headers sent, body chunks may follow
    COMPLETE = "complete"  # the last body chunk was sent


class AsyncHttpConsumer(AsyncConsumer):
    """Collects the request body, calls ``handle(body)``, then ``disconnect()``.

    ``send_headers``/``send_body`` stream a response; ``send_response`` sends a whole one.

    Differences from Channels (both fix known defects):

    * If ``handle()`` returns with the response still open (headers sent, last body chunk
      not yet sent: ``send_body(..., more_body=True)``), the consumer keeps running, so
      channel-layer handlers can finish the response later (long-poll, server-sent events,
      the pattern in Channels' own docs, which Channels stops right after ``handle()``).
      It stops, calling ``disconnect()``, once the final chunk is sent or the client leaves.
    * Sending the body before the headers, or anything after the final chunk, raises
      ``RuntimeError`` naming what was expected instead of reaching the server.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.body: list[bytes] = []
        self.response_state = ResponseState.NOT_STARTED

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Each request starts afresh, also when one instance serves several (Channels'
        # own tests call a consumer instance directly, more than once).
        self.body = []
        self.response_state = ResponseState.NOT_STARTED
        await super().__call__(scope, receive, send)

    async def send_headers(self, *, status: int = 200, headers: HeadersArg = None) -> None:
        """Start the response with ``status`` and ``headers`` (a list of pairs or a dict)."""
        if self.response_state is not ResponseState.NOT_STARTED:
            raise RuntimeError(
                "expected send_headers() once, before the body, got it with the response "
                f"{self.response_state.value} (headers were already sent)"
            )
        if headers is None:
            header_list: list[tuple[bytes, bytes]] = []
        elif isinstance(headers, Mapping):
            header_list = list(headers.items())
        else:
            header_list = list(headers)
        self.response_state = ResponseState.STREAMING
        await self.send({"type": "http.response.start", "status": status, "headers": header_list})

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None:
        """Send a chunk of the body; ``more_body=True`` keeps the response open."""
        if not isinstance(body, bytes | bytearray | memoryview):
            raise TypeError(f"expected body to be bytes, got {type(body).__name__}")
        if self.response_state is not ResponseState.STREAMING:
            raise RuntimeError(
                "expected send_headers() before send_body() and nothing after the final "
                f"chunk, got send_body() with the response {self.response_state.value}"
            )
        if not more_body:
            self.response_state = ResponseState.COMPLETE
        await self.send({"type": "http.response.body", "body": bytes(body), "more_body": more_body})

    async def send_response(self, status: int, body: bytes, **kwargs: Any) -> None:
        """Send a complete response: ``send_headers(status=..., **kwargs)`` then the body."""
        await self.send_headers(status=status, **kwargs)
        await self.send_body(body)

    async def handle(self, body: bytes) -> None:
        """Handle the request, given its whole body. Subclasses must implement it."""
        raise NotImplementedError(
            f"{type(self).__qualname__} must provide a handle() method (subclasses of "
            "AsyncHttpConsumer do)"
        )

    async def disconnect(self) -> None:
        """Called after ``handle()`` returns, or when the client goes away."""

    async def http_request(self, message: Message) -> None:
        """Collect body chunks; on the last one call ``handle()`` then ``disconnect()``."""
        if "body" in message:
            self.body.append(message["body"])
        if not message.get("more_body"):
            try:
                await self.handle(b"".join(self.body))
            except BaseException:
                await self.disconnect()
                raise
            if self.response_state is not ResponseState.STREAMING:
                await self.disconnect()
                raise StopConsumer()
            # The response stays open: later handlers (channel-layer messages) finish it.

    async def dispatch(self, message: Message) -> None:
        await super().dispatch(message)
        if self.response_state is ResponseState.COMPLETE and message.get("type") != "http.request":
            # A handler other than http_request (which stops by itself) sent the final chunk.
            await self.disconnect()
            raise StopConsumer()

    async def http_disconnect(self, message: Message) -> None:
        """The client went away: call ``disconnect()`` and stop."""
        await self.disconnect()
        raise StopConsumer()
