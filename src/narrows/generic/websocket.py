"""WebSocket consumers: ``WebsocketConsumer``, ``AsyncWebsocketConsumer`` and their JSON forms.

The WebSocket flow (group membership, connect/accept/deny, frame decoding, send, close,
disconnect) is written once below as coroutines; the async classes await it and the sync
classes run it through :func:`narrows.sync.run_sync` (see :mod:`narrows.sync`).
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar, Protocol

from narrows.consumer import AsyncConsumer, SyncConsumer
from narrows.db import database_sync_to_async
from narrows.exceptions import (
    AcceptConnection,
    DenyConnection,
    InvalidChannelLayerError,
    StopConsumer,
)
from narrows.layers.base import ChannelLayer
from narrows.sync import call_async, call_hook, run_sync
from narrows.types import HeaderIterable, Message

logger = logging.getLogger("narrows.consumer")

__all__ = [
    "AsyncJsonWebsocketConsumer",
    "AsyncWebsocketConsumer",
    "JsonWebsocketConsumer",
    "WebsocketConsumer",
]


class _WebsocketLike(Protocol):
    """What the shared flow needs from a WebSocket consumer of either colour."""

    _sync: ClassVar[bool]
    groups: list[str] | None
    channel_layer: ChannelLayer | None
    channel_name: str
    _disconnect_called: bool

    def base_send(self, message: Message) -> Any: ...
    def connect(self) -> Any: ...
    def accept(
        self, subprotocol: str | None = ..., headers: HeaderIterable | None = ...
    ) -> Any: ...
    def receive(self, text_data: str | None = ..., bytes_data: bytes | None = ...) -> Any: ...
    def close(self, code: int | bool | None = ..., reason: str | None = ...) -> Any: ...
    def disconnect(self, code: int) -> Any: ...


class _JsonLike(_WebsocketLike, Protocol):
    def receive_json(self, content: Any, **kwargs: Any) -> Any: ...
    def decode_json(self, text_data: str) -> Any: ...
    def encode_json(self, content: Any) -> Any: ...
    def send(
        self, text_data: str | None = ..., bytes_data: bytes | None = ..., close: Any = ...
    ) -> Any: ...


# --- the flow, written once ------------------------------------------------------------------


async def _groups(consumer: _WebsocketLike, action: str) -> None:
    if not consumer.groups:
        return
    layer = consumer.channel_layer
    method = getattr(layer, action, None) if layer is not None else None
    if method is None:
        raise InvalidChannelLayerError(
            f"{type(consumer).__qualname__}.groups is {consumer.groups!r}: expected a channel "
            f"layer supporting groups ({action}), got "
            + ("no layer (CHANNEL_LAYERS is unconfigured)" if layer is None else repr(layer))
        )
    for group in consumer.groups:
        await call_async(consumer._sync, method, group, consumer.channel_name)


async def websocket_connect(consumer: _WebsocketLike, message: Message) -> None:
    await _groups(consumer, "group_add")
    try:
        await call_hook(consumer._sync, consumer.connect)
    except AcceptConnection:
        await call_hook(consumer._sync, consumer.accept)
    except DenyConnection:
        await call_hook(consumer._sync, consumer.close)


async def accept(
    consumer: _WebsocketLike, subprotocol: str | None, headers: HeaderIterable | None
) -> None:
    message: Message = {"type": "websocket.accept", "subprotocol": subprotocol}
    if headers:
        message["headers"] = list(headers)
    await call_hook(consumer._sync, consumer.base_send, message)


async def websocket_receive(consumer: _WebsocketLike, message: Message) -> None:
    text = message.get("text")
    if text is not None:
        await call_hook(consumer._sync, consumer.receive, text_data=text)
    else:
        await call_hook(consumer._sync, consumer.receive, bytes_data=message.get("bytes"))


async def send(
    consumer: _WebsocketLike, text_data: str | None, bytes_data: bytes | None, close: Any
) -> None:
    if text_data is not None:
        message: Message = {"type": "websocket.send", "text": text_data}
    elif bytes_data is not None:
        message = {"type": "websocket.send", "bytes": bytes_data}
    else:
        raise ValueError("You must pass one of bytes_data or text_data")
    await call_hook(consumer._sync, consumer.base_send, message)
    if close:
        await call_hook(consumer._sync, consumer.close, close)


async def close(consumer: _WebsocketLike, code: int | bool | None, reason: str | None) -> None:
    message: Message = {"type": "websocket.close"}
    if code is not None and code is not True:
        message["code"] = code
    if reason:
        message["reason"] = reason
    await call_hook(consumer._sync, consumer.base_send, message)


async def websocket_disconnect(consumer: _WebsocketLike, message: Message) -> None:
    consumer._disconnect_called = True
    await _groups(consumer, "group_discard")
    # .get(): a disconnect without a code must not become a KeyError (Channels #1926).
    await call_hook(consumer._sync, consumer.disconnect, message.get("code", 1000))
    raise StopConsumer()


async def cleanup_after_error(consumer: _WebsocketLike, error: BaseException) -> None:
    """A handler failed: leave the groups and call ``disconnect(1011)`` before it propagates.

    The consumer is about to die and the server will close the socket with 1011, so the
    ``websocket.disconnect`` that normally triggers this cleanup will never be dispatched.
    Channels skips it (django/channels#1466): group memberships leak until they expire and
    ``disconnect()`` never runs. Errors during the cleanup are logged; the handler's error
    is the one raised.
    """
    if consumer._disconnect_called:
        return
    consumer._disconnect_called = True
    try:
        await _groups(consumer, "group_discard")
        await call_hook(consumer._sync, consumer.disconnect, 1011)
    except Exception:
        logger.exception(
            "%s: cleanup after a failed handler (%r) failed as well",
            type(consumer).__qualname__,
            error,
        )


async def json_receive(
    consumer: _JsonLike, text_data: str | None, bytes_data: bytes | None, kwargs: dict[str, Any]
) -> None:
    if not text_data:
        raise ValueError(
            "No text section for incoming WebSocket frame! expected a text frame holding "
            f"JSON, got {'a binary frame' if bytes_data is not None else 'an empty frame'}"
        )
    content = await call_hook(consumer._sync, consumer.decode_json, text_data)
    await call_hook(consumer._sync, consumer.receive_json, content, **kwargs)


async def send_json(consumer: _JsonLike, content: Any, close: Any) -> None:
    text = await call_hook(consumer._sync, consumer.encode_json, content)
    # Through the overridable WebSocket-level send(), as Channels' super().send() does.
    await call_hook(consumer._sync, consumer.send, text_data=text, close=close)


# --- the classes ---------------------------------------------------------------------------


class AsyncWebsocketConsumer(AsyncConsumer):
    """WebSocket consumer with ``async def`` hooks: connect, receive, disconnect."""

    groups: list[str] | None = None
    _disconnect_called = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.groups is None:
            self.groups = []

    async def dispatch(self, message: Message) -> None:
        try:
            await super().dispatch(message)
        except StopConsumer:
            raise
        except Exception as exc:
            await cleanup_after_error(self, exc)
            raise

    async def websocket_connect(self, message: Message) -> None:
        """Join ``groups``, then call ``connect()`` (handles Accept/DenyConnection)."""
        await websocket_connect(self, message)

    async def connect(self) -> None:
        """Called when the client opens the WebSocket; accepts it by default."""
        await self.accept()

    async def accept(
        self, subprotocol: str | None = None, headers: HeaderIterable | None = None
    ) -> None:
        """Accept the WebSocket, optionally choosing a subprotocol and adding headers."""
        await accept(self, subprotocol, headers)

    async def websocket_receive(self, message: Message) -> None:
        """Decode a frame and pass it to ``receive()``."""
        await websocket_receive(self, message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called with each frame's text or bytes."""

    async def send(  # type: ignore[override]
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: Any = False
    ) -> None:
        """Send a text or binary frame; ``close=True`` (or a close code) closes afterwards."""
        await send(self, text_data, bytes_data, close)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close the WebSocket (before accepting: reject the handshake)."""
        await close(self, code, reason)

    async def websocket_disconnect(self, message: Message) -> None:
        """Leave ``groups``, call ``disconnect(code)``, stop the consumer."""
        await websocket_disconnect(self, message)

    async def disconnect(self, code: int) -> None:
        """Called when the WebSocket closed, with its close code."""


class WebsocketConsumer(SyncConsumer):
    """WebSocket consumer with plain hooks run in a worker thread (same flow as the async one)."""

    groups: list[str] | None = None
    _disconnect_called = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.groups is None:
            self.groups = []

    async def dispatch(self, message: Message) -> None:
        try:
            await super().dispatch(message)
        except StopConsumer:
            raise
        except Exception as exc:
            await database_sync_to_async(self._cleanup_in_thread)(exc)
            raise

    def _cleanup_in_thread(self, error: BaseException) -> None:
        run_sync(cleanup_after_error(self, error))

    def websocket_connect(self, message: Message) -> None:
        """Join ``groups``, then call ``connect()`` (handles Accept/DenyConnection)."""
        run_sync(websocket_connect(self, message))

    def connect(self) -> None:
        """Called when the client opens the WebSocket; accepts it by default."""
        self.accept()

    def accept(self, subprotocol: str | None = None, headers: HeaderIterable | None = None) -> None:
        """Accept the WebSocket, optionally choosing a subprotocol and adding headers."""
        run_sync(accept(self, subprotocol, headers))

    def websocket_receive(self, message: Message) -> None:
        """Decode a frame and pass it to ``receive()``."""
        run_sync(websocket_receive(self, message))

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Called with each frame's text or bytes."""

    def send(  # type: ignore[override]
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: Any = False
    ) -> None:
        """Send a text or binary frame; ``close=True`` (or a close code) closes afterwards."""
        run_sync(send(self, text_data, bytes_data, close))

    def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close the WebSocket (before accepting: reject the handshake)."""
        run_sync(close(self, code, reason))

    def websocket_disconnect(self, message: Message) -> None:
        """Leave ``groups``, call ``disconnect(code)``, stop the consumer."""
        run_sync(websocket_disconnect(self, message))

    def disconnect(self, code: int) -> None:
        """Called when the WebSocket closed, with its close code."""


class AsyncJsonWebsocketConsumer(AsyncWebsocketConsumer):
    """Async WebSocket consumer that decodes text frames as JSON (``receive_json``)."""

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        await json_receive(self, text_data, bytes_data, kwargs)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Called with each decoded JSON message."""

    async def send_json(self, content: Any, close: Any = False) -> None:
        """Encode ``content`` as JSON and send it as a text frame."""
        await send_json(self, content, close)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        return json.loads(text_data)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return json.dumps(content)


class JsonWebsocketConsumer(WebsocketConsumer):
    """Sync WebSocket consumer that decodes text frames as JSON (``receive_json``)."""

    def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        run_sync(json_receive(self, text_data, bytes_data, kwargs))

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Called with each decoded JSON message."""

    def send_json(self, content: Any, close: Any = False) -> None:
        """Encode ``content`` as JSON and send it as a text frame."""
        run_sync(send_json(self, content, close))

    @classmethod
    def decode_json(cls, text_data: str) -> Any:
        return json.loads(text_data)

    @classmethod
    def encode_json(cls, content: Any) -> str:
        return json.dumps(content)
