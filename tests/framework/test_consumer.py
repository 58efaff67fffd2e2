"""AsyncConsumer / SyncConsumer: dispatch, as_asgi, channel layer, stopping, errors."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from django.test import override_settings

from narrows.consumer import AsyncConsumer, SyncConsumer, get_handler_name
from narrows.exceptions import StopConsumer
from narrows.layers import get_channel_layer
from narrows.testing import ApplicationCommunicator

SCOPE: dict[str, Any] = {"type": "testprotocol"}


class AsyncEcho(AsyncConsumer):
    async def test_ping(self, message: dict[str, Any]) -> None:
        await self.send({"type": "test.pong", "value": message["value"]})

    async def test_stop(self, message: dict[str, Any]) -> None:
        raise StopConsumer


class SyncEcho(SyncConsumer):
    def test_ping(self, message: dict[str, Any]) -> None:
        self.send(
            {
                "type": "test.pong",
                "value": message["value"],
                "thread": threading.current_thread().name,
            }
        )

    def test_stop(self, message: dict[str, Any]) -> None:
        raise StopConsumer


def test_get_handler_name() -> None:
    assert get_handler_name({"type": "websocket.receive"}) == "websocket_receive"
    assert get_handler_name({"type": "chat.message.new"}) == "chat_message_new"
    with pytest.raises(ValueError, match="no 'type'"):
        get_handler_name({"text": "x"})
    with pytest.raises(ValueError, match="leading underscore"):
        get_handler_name({"type": "_private"})
    with pytest.raises(ValueError, match="leading underscore"):
        get_handler_name({"type": ".private"})
    with pytest.raises(ValueError, match="expected message 'type' to be a str"):
        get_handler_name({"type": 3})


@pytest.mark.parametrize("consumer", [AsyncEcho, SyncEcho])
async def test_dispatch_by_type_and_stop(consumer: type[AsyncConsumer]) -> None:
    comm = ApplicationCommunicator(consumer.as_asgi(), SCOPE)
    await comm.send_input({"type": "test.ping", "value": 1})
    await comm.send_input({"type": "test.ping", "value": 2})
    first = await comm.receive_output()
    second = await comm.receive_output()
    assert (first["type"], first["value"]) == ("test.pong", 1)
    assert second["value"] == 2
    await comm.send_input({"type": "test.stop"})
    await comm.wait()  # returns: StopConsumer ends the consumer cleanly
    assert comm.future.done() and comm.future.exception() is None


async def test_sync_consumer_handlers_run_outside_the_event_loop_thread() -> None:
    comm = ApplicationCommunicator(SyncEcho.as_asgi(), SCOPE)
    await comm.send_input({"type": "test.ping", "value": 0})
    reply = await comm.receive_output()
    assert reply["thread"] != threading.current_thread().name
    comm.stop()


@pytest.mark.parametrize("consumer", [AsyncEcho, SyncEcho])
async def test_missing_handler_is_a_clear_error(consumer: type[AsyncConsumer]) -> None:
    comm = ApplicationCommunicator(consumer.as_asgi(), SCOPE)
    await comm.send_input({"type": "test.unknown"})
    with pytest.raises(
        ValueError, match=r"No handler for message type 'test.unknown'.*test_unknown"
    ):
        await comm.wait()


async def test_private_methods_cannot_be_reached_by_message_type() -> None:
    called: list[str] = []

    class Guarded(AsyncConsumer):
        async def _secret(self, message: dict[str, Any]) -> None:
            called.append("secret")

    for kind in ("_secret", ".secret"):
        comm = ApplicationCommunicator(Guarded.as_asgi(), SCOPE)
        await comm.send_input({"type": kind})
        with pytest.raises(ValueError, match="leading underscore"):
            await comm.wait()
    assert called == []


def test_as_asgi_attributes_and_naming() -> None:
    app = AsyncEcho.as_asgi(channel_layer_alias="other")
    assert app.consumer_class is AsyncEcho
    assert app.consumer_initkwargs == {"channel_layer_alias": "other"}
    assert app.__name__ == "AsyncEcho"  # type: ignore[attr-defined]
    assert app.__doc__ == AsyncEcho.__doc__


def test_as_asgi_rejects_unknown_keywords_early() -> None:
    with pytest.raises(TypeError, match=r"invalid keyword 'nope'"):
        AsyncEcho.as_asgi(nope=1)


async def test_as_asgi_sets_initkwargs_per_instance() -> None:
    class Greeter(AsyncConsumer):
        greeting = "hello"

        async def test_ping(self, message: dict[str, Any]) -> None:
            await self.send({"type": "test.pong", "value": self.greeting})

    comm = ApplicationCommunicator(Greeter.as_asgi(greeting="bonjour"), SCOPE)
    await comm.send_input({"type": "test.ping"})
    assert (await comm.receive_output())["value"] == "bonjour"
    assert Greeter.greeting == "hello"
    comm.stop()


async def test_as_asgi_passes_initkwargs_to_a_custom_init() -> None:
    class Custom(AsyncConsumer):
        def __init__(self, room: str) -> None:
            super().__init__()
            self.room = room

        async def test_ping(self, message: dict[str, Any]) -> None:
            await self.send({"type": "test.pong", "value": self.room})

    comm = ApplicationCommunicator(Custom.as_asgi(room="blue"), SCOPE)
    await comm.send_input({"type": "test.ping"})
    assert (await comm.receive_output())["value"] == "blue"
    comm.stop()


async def test_each_connection_gets_its_own_instance() -> None:
    instances: list[int] = []

    class Counter(AsyncConsumer):
        async def test_ping(self, message: dict[str, Any]) -> None:
            instances.append(id(self))
            self.count = getattr(self, "count", 0) + 1
            await self.send({"type": "test.pong", "value": self.count})

    app = Counter.as_asgi()
    a, b = ApplicationCommunicator(app, SCOPE), ApplicationCommunicator(app, SCOPE)
    for comm in (a, b, a):
        await comm.send_input({"type": "test.ping"})
    assert (await a.receive_output())["value"] == 1
    assert (await b.receive_output())["value"] == 1
    assert (await a.receive_output())["value"] == 2
    assert len(set(instances)) == 2
    a.stop()
    b.stop()


@pytest.mark.parametrize("consumer", [AsyncEcho, SyncEcho])
async def test_channel_layer_messages_share_the_dispatch_loop(
    consumer: type[AsyncConsumer],
) -> None:
    names: list[str] = []

    # Capture the channel name the consumer got from the layer, via a first client message.
    class Reporter(AsyncEcho):
        async def test_name(self, message: dict[str, Any]) -> None:
            names.append(self.channel_name)
            await self.send({"type": "test.named"})

    app = Reporter.as_asgi() if consumer is AsyncEcho else _SyncReporter.as_asgi()
    comm = ApplicationCommunicator(app, SCOPE)
    await comm.send_input({"type": "test.name"})
    reply = await comm.receive_output()
    if consumer is SyncEcho:
        names.append(reply["channel_name"])
    layer = get_channel_layer()
    assert layer is not None
    channel_name = names[0]
    assert channel_name.startswith("specific.")
    await layer.send(channel_name, {"type": "test.ping", "value": "from layer"})
    assert (await comm.receive_output())["value"] == "from layer"
    await comm.send_input({"type": "test.ping", "value": "from client"})
    assert (await comm.receive_output())["value"] == "from client"
    await comm.send_input({"type": "test.stop"})
    await comm.wait()


class _SyncReporter(SyncEcho):
    def test_name(self, message: dict[str, Any]) -> None:
        self.send({"type": "test.named", "channel_name": self.channel_name})


async def test_channel_layer_alias_selects_the_layer() -> None:
    layers = {
        "default": {"BACKEND": "narrows.layers.InMemoryChannelLayer"},
        "second": {"BACKEND": "narrows.layers.InMemoryChannelLayer"},
    }

    class OnSecond(AsyncEcho):
        channel_layer_alias = "second"

        async def test_name(self, message: dict[str, Any]) -> None:
            assert self.channel_layer is get_channel_layer("second")
            await self.send({"type": "test.named", "name": self.channel_name})

    with override_settings(CHANNEL_LAYERS=layers):
        comm = ApplicationCommunicator(OnSecond.as_asgi(), SCOPE)
        await comm.send_input({"type": "test.name"})
        name = (await comm.receive_output())["name"]
        second = get_channel_layer("second")
        assert second is not None and second is not get_channel_layer("default")
        await second.send(name, {"type": "test.ping", "value": "second"})
        assert (await comm.receive_output())["value"] == "second"
        comm.stop()


async def test_without_a_layer_there_is_no_channel_name() -> None:
    class NoLayer(AsyncEcho):
        async def test_name(self, message: dict[str, Any]) -> None:
            await self.send(
                {
                    "type": "test.named",
                    "layer": self.channel_layer,
                    "has_name": hasattr(self, "channel_name"),
                }
            )

    with override_settings(CHANNEL_LAYERS={}):
        comm = ApplicationCommunicator(NoLayer.as_asgi(), SCOPE)
        await comm.send_input({"type": "test.name"})
        reply = await comm.receive_output()
        assert reply["layer"] is None and reply["has_name"] is False
        comm.stop()


async def test_handler_exception_propagates() -> None:
    class Broken(AsyncConsumer):
        async def test_ping(self, message: dict[str, Any]) -> None:
            raise RuntimeError("boom")

    comm = ApplicationCommunicator(Broken.as_asgi(), SCOPE)
    await comm.send_input({"type": "test.ping"})
    with pytest.raises(RuntimeError, match="boom"):
        await comm.wait()


async def test_cancelling_the_consumer_cancels_pending_receives() -> None:
    comm = ApplicationCommunicator(AsyncEcho.as_asgi(), SCOPE)
    await comm.send_input({"type": "test.ping", "value": 1})
    await comm.receive_output()
    comm.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await comm.future


async def test_custom_init_passing_kwargs_to_super_keeps_working() -> None:
    # A Channels pattern: read a keyword and pass everything on to super().__init__().
    from narrows.generic.websocket import AsyncWebsocketConsumer
    from narrows.testing import WebsocketCommunicator

    class Room(AsyncWebsocketConsumer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.room_name = kwargs["room"]

        async def connect(self) -> None:
            await self.accept()
            await self.send(text_data=self.room_name)

    comm = WebsocketCommunicator(Room.as_asgi(room="blue"), "/")
    assert (await comm.connect())[0]
    assert await comm.receive_from() == "blue"
    await comm.disconnect()


def test_positional_arguments_are_refused_with_a_hint() -> None:
    with pytest.raises(TypeError, match=r"keyword arguments only.*as_asgi"):
        AsyncEcho({"type": "websocket"})
