"""Consumers: ASGI applications that dispatch each message to a method named after its type.

``AsyncConsumer`` and ``SyncConsumer`` have Channels 4.x's names and semantics: a message of
type ``"websocket.receive"`` goes to ``websocket_receive(message)``; with a channel layer
configured the consumer gets its own ``channel_name`` and messages sent to it over the layer
are dispatched through the same loop as the client's messages. Mount a consumer with
``MyConsumer.as_asgi(**initkwargs)``.

The sync consumer is the async one driven through :mod:`narrows.sync` (one implementation);
its handlers run in a worker thread via ``database_sync_to_async``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Protocol, cast

from asgiref.sync import async_to_sync

from narrows import DEFAULT_CHANNEL_LAYER
from narrows.db import aclose_old_connections, database_sync_to_async
from narrows.exceptions import StopConsumer
from narrows.layers.base import ChannelLayer
from narrows.sync import call_hook, run_sync
from narrows.types import Message, Receive, Scope, Send
from narrows.utils import await_many_dispatch

__all__ = ["AsyncConsumer", "SyncConsumer", "get_handler_name"]


def get_channel_layer(alias: str = DEFAULT_CHANNEL_LAYER) -> ChannelLayer | None:
    """``narrows.layers.get_channel_layer``, imported when first needed (it reads settings)."""
    from narrows.layers.manager import get_channel_layer as layers_get_channel_layer

    return layers_get_channel_layer(alias)


def get_handler_name(message: Message) -> str:
    """The handler method name for a message: its ``type`` with dots replaced by underscores."""
    if not isinstance(message, dict) and not hasattr(message, "get"):
        raise ValueError(f"expected a message dict, got {type(message).__name__}")
    msg_type = message.get("type")
    if msg_type is None:
        raise ValueError(f"Incoming message has no 'type' attribute: {message!r}")
    if not isinstance(msg_type, str):
        raise ValueError(f"expected message 'type' to be a str, got {type(msg_type).__name__}")
    handler_name = msg_type.replace(".", "_")
    if handler_name.startswith("_"):
        # "_x" and ".x" would reach private methods.
        raise ValueError(f"Malformed type in message (leading underscore): {msg_type!r}")
    return handler_name


async def dispatch_flow(consumer: AsyncConsumer, message: Message) -> None:
    """Find the handler for ``message`` and call it (shared by sync and async consumers)."""
    name = get_handler_name(message)
    handler = getattr(consumer, name, None)
    if handler is None:
        raise ValueError(
            f"No handler for message type {message['type']!r}: expected a method "
            f"{type(consumer).__qualname__}.{name}()"
        )
    await call_hook(consumer._sync, handler, message)


class AsyncConsumer:
    """Base consumer: an ASGI app dispatching messages to ``async`` handler methods."""

    _sync: ClassVar[bool] = False
    channel_layer_alias: str = DEFAULT_CHANNEL_LAYER

    scope: Scope
    channel_layer: ChannelLayer | None
    channel_name: str
    channel_receive: Callable[[], Awaitable[dict[str, Any]]]
    base_send: Callable[[Message], Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Set ``as_asgi()`` keywords as instance attributes.

        Channels passes ``as_asgi(**initkwargs)`` to the constructor, where its base classes
        either reject them (``object.__init__``) or drop them; narrows sets them on the
        instance, like Django's ``View.as_view``. ``as_asgi()`` checks that each names a
        class attribute unless the class defines its own ``__init__``, which then receives
        them as arguments, as in Channels.
        """
        if args:
            raise TypeError(
                f"{type(self).__qualname__}() takes keyword arguments only, got {len(args)} "
                "positional (mount consumers with .as_asgi(), not the class itself)"
            )
        for key, value in kwargs.items():
            setattr(self, key, value)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        self.base_send = async_to_sync(_as_coroutine_function(send)) if self._sync else send
        if not self._sync:
            # Sync consumers close stale connections around every handler (in the thread,
            # where the DB is used); async ones once at start and end, not per message.
            await aclose_old_connections()
        try:
            if self.channel_layer is not None:
                await await_many_dispatch([receive, self.channel_receive], self.dispatch)
            else:
                while True:
                    await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            if not self._sync:
                await aclose_old_connections()

    async def dispatch(self, message: Message) -> None:
        """Call the handler named after ``message["type"]``."""
        await dispatch_flow(self, message)

    async def send(self, message: Message) -> None:
        """Send an ASGI message to the client (overridable)."""
        await self.base_send(message)

    @classmethod
    def as_asgi(cls, **initkwargs: Any) -> _ConsumerApp:
        """An ASGI application that runs a new instance of this consumer per connection.

        Keywords are passed to the constructor; without a custom ``__init__`` each must name
        an existing class attribute (checked here) and is set on the instance.
        """
        if getattr(cls.__init__, "__module__", "").startswith("narrows."):
            _check_initkwargs(cls, initkwargs)  # fail at import time, not per connection

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            consumer = cls(**initkwargs)
            await consumer(scope, receive, send)

        wrapped = cast(_ConsumerApp, app)
        wrapped.consumer_class = cls
        wrapped.consumer_initkwargs = initkwargs
        functools.update_wrapper(wrapped, cls, updated=())
        return wrapped


def _as_coroutine_function(send: Send) -> Send:
    """``send`` as an ``async def`` (async_to_sync warns about plain callables)."""
    if inspect.iscoroutinefunction(send):
        return send

    async def send_message(message: Message) -> None:
        await send(message)

    return send_message


def _check_initkwargs(cls: type, initkwargs: dict[str, Any]) -> None:
    for key in initkwargs:
        if not hasattr(cls, key):
            raise TypeError(
                f"{cls.__qualname__}.as_asgi() received an invalid keyword {key!r}: expected "
                "the name of an existing class attribute (or define __init__ to take it)"
            )


class _ConsumerApp(Protocol):
    consumer_class: type[AsyncConsumer]
    consumer_initkwargs: dict[str, Any]

    # Returns Any (not None) so django-stubs accepts the app in path()/re_path().
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any: ...


class SyncConsumer(AsyncConsumer):
    """Consumer whose handlers are plain methods, run in a worker thread.

    ``send`` (and everything built on it) may be called from those handlers; it hands the
    message to the event loop with ``async_to_sync``.
    """

    _sync: ClassVar[bool] = True

    async def dispatch(self, message: Message) -> None:
        await database_sync_to_async(self._dispatch_in_thread)(message)

    def _dispatch_in_thread(self, message: Message) -> None:
        run_sync(dispatch_flow(self, message))

    def send(self, message: Message) -> None:  # type: ignore[override]
        """Send an ASGI message to the client, from a handler's thread."""
        self.base_send(message)
