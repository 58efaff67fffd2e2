"""WebsocketConsumer, AsyncWebsocketConsumer and the JSON variants, through the communicator."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings

from narrows.exceptions import AcceptConnection, DenyConnection, InvalidChannelLayerError
from narrows.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
)
from narrows.layers import get_channel_layer
from narrows.testing import WebsocketCommunicator

# --- one behaviour, two colours ----------------------------------------------------------------


class AsyncEcho(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "close":
            await self.close(code=4001, reason="asked to")
        elif text_data == "bye":
            await self.send(text_data="bye!", close=True)
        elif text_data is not None:
            await self.send(text_data=f"echo:{text_data}")
        else:
            await self.send(bytes_data=bytes_data[::-1] if bytes_data else b"")

    async def disconnect(self, code: int) -> None:
        DISCONNECTS.append(("async", code))


class SyncEcho(WebsocketConsumer):
    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "close":
            self.close(code=4001, reason="asked to")
        elif text_data == "bye":
            self.send(text_data="bye!", close=True)
        elif text_data is not None:
            self.send(text_data=f"echo:{text_data}")
        else:
            self.send(bytes_data=bytes_data[::-1] if bytes_data else b"")

    def disconnect(self, code: int) -> None:
        DISCONNECTS.append(("sync", code))


DISCONNECTS: list[tuple[str, int]] = []
ECHOES = [AsyncEcho, SyncEcho]


@pytest.mark.parametrize("consumer", ECHOES)
async def test_echo_text_and_bytes(consumer: Any) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/ws/")
    assert await comm.connect() == (True, None)
    await comm.send_to(text_data="hi")
    assert await comm.receive_from() == "echo:hi"
    await comm.send_to(bytes_data=b"abc")
    assert await comm.receive_from() == b"cba"
    assert await comm.receive_nothing()
    await comm.disconnect(code=1001)
    kind = "async" if consumer is AsyncEcho else "sync"
    assert (kind, 1001) in DISCONNECTS


@pytest.mark.parametrize("consumer", ECHOES)
async def test_close_with_code_and_reason(consumer: Any) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/ws/")
    await comm.connect()
    await comm.send_to(text_data="close")
    assert await comm.receive_output() == {
        "type": "websocket.close",
        "code": 4001,
        "reason": "asked to",
    }
    await comm.disconnect(code=4001)


@pytest.mark.parametrize("consumer", ECHOES)
async def test_send_with_close_true(consumer: Any) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/ws/")
    await comm.connect()
    await comm.send_to(text_data="bye")
    assert await comm.receive_from() == "bye!"
    assert await comm.receive_output() == {"type": "websocket.close"}
    await comm.disconnect()


class AsyncSubprotocol(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        offered = self.scope["subprotocols"]
        await self.accept(subprotocol=offered[-1], headers=[(b"x-extra", b"1")])


class SyncSubprotocol(WebsocketConsumer):
    def connect(self) -> None:
        offered = self.scope["subprotocols"]
        self.accept(subprotocol=offered[-1], headers=[(b"x-extra", b"1")])


@pytest.mark.parametrize("consumer", [AsyncSubprotocol, SyncSubprotocol])
async def test_accept_with_subprotocol_and_headers(consumer: Any) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/ws/", subprotocols=["v1", "v2"])
    await comm.send_input({"type": "websocket.connect"})
    accept = await comm.receive_output()
    assert accept == {
        "type": "websocket.accept",
        "subprotocol": "v2",
        "headers": [(b"x-extra", b"1")],
    }
    await comm.disconnect()
    second = WebsocketCommunicator(consumer.as_asgi(), "/ws/", subprotocols=["a", "b"])
    assert await second.connect() == (True, "b")
    assert second.response_headers == [(b"x-extra", b"1")]
    await second.disconnect()


class AsyncDeny(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        if self.scope["query_string"] == b"ok=1":
            raise AcceptConnection
        raise DenyConnection


class SyncDeny(WebsocketConsumer):
    def connect(self) -> None:
        if self.scope["query_string"] == b"ok=1":
            raise AcceptConnection
        raise DenyConnection


@pytest.mark.parametrize("consumer", [AsyncDeny, SyncDeny])
async def test_accept_and_deny_connection_exceptions(consumer: Any) -> None:
    denied = WebsocketCommunicator(consumer.as_asgi(), "/ws/")
    assert await denied.connect() == (False, 1000)
    await denied.disconnect()
    accepted = WebsocketCommunicator(consumer.as_asgi(), "/ws/?ok=1")
    assert await accepted.connect() == (True, None)
    await accepted.disconnect()


class AsyncCloseInConnect(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.close(code=4403)


@pytest.mark.parametrize("consumer", [AsyncCloseInConnect])
async def test_close_before_accept_rejects_with_code(consumer: Any) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/ws/")
    assert await comm.connect() == (False, 4403)
    await comm.disconnect()


@pytest.mark.parametrize("consumer", ECHOES)
async def test_send_without_data_is_an_error(consumer: Any) -> None:
    if consumer is AsyncEcho:

        class EmptyAsync(AsyncWebsocketConsumer):
            async def receive(self, text_data: Any = None, bytes_data: Any = None) -> None:
                await self.send()

        app = EmptyAsync.as_asgi()
    else:

        class EmptySync(WebsocketConsumer):
            def receive(self, text_data: Any = None, bytes_data: Any = None) -> None:
                self.send()

        app = EmptySync.as_asgi()
    comm = WebsocketCommunicator(app, "/ws/")
    await comm.connect()
    await comm.send_to(text_data="x")
    with pytest.raises(ValueError, match="one of bytes_data or text_data"):
        await comm.wait()


# --- JSON --------------------------------------------------------------------------------------


class AsyncJson(AsyncJsonWebsocketConsumer):
    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json({"got": content, "kind": "async"})


class SyncJson(JsonWebsocketConsumer):
    def receive_json(self, content: Any, **kwargs: Any) -> None:
        self.send_json({"got": content, "kind": "sync"})


@pytest.mark.parametrize("consumer", [AsyncJson, SyncJson])
async def test_json_round_trip(consumer: Any) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/ws/")
    await comm.connect()
    await comm.send_json_to({"n": [1, 2, "x"]})
    reply = await comm.receive_json_from()
    assert reply["got"] == {"n": [1, 2, "x"]}
    assert reply["kind"] == ("async" if consumer is AsyncJson else "sync")
    await comm.disconnect()


@pytest.mark.parametrize("consumer", [AsyncJson, SyncJson])
async def test_json_rejects_binary_frames(consumer: Any) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/ws/")
    await comm.connect()
    await comm.send_to(bytes_data=b"{}")
    with pytest.raises(ValueError, match="No text section for incoming WebSocket frame"):
        await comm.wait()


class AsyncCustomJson(AsyncJson):
    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        return {"decoded": text_data}

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return "custom:" + repr(sorted(content))


class SyncCustomJson(SyncJson):
    @classmethod
    def decode_json(cls, text_data: str) -> Any:
        return {"decoded": text_data}

    @classmethod
    def encode_json(cls, content: Any) -> str:
        return "custom:" + repr(sorted(content))


@pytest.mark.parametrize("consumer", [AsyncCustomJson, SyncCustomJson])
async def test_json_encode_decode_hooks(consumer: Any) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/ws/")
    await comm.connect()
    await comm.send_to(text_data="raw")
    assert await comm.receive_from() == "custom:['got', 'kind']"
    await comm.disconnect()


@pytest.mark.parametrize("consumer", [AsyncJson, SyncJson])
async def test_send_json_close(consumer: Any) -> None:
    if consumer is AsyncJson:

        class Closing(AsyncJsonWebsocketConsumer):
            async def receive_json(self, content: Any, **kwargs: Any) -> None:
                await self.send_json(content, close=4002)

    else:

        class Closing(JsonWebsocketConsumer):  # type: ignore[no-redef]
            def receive_json(self, content: Any, **kwargs: Any) -> None:
                self.send_json(content, close=4002)

    comm = WebsocketCommunicator(Closing.as_asgi(), "/ws/")
    await comm.connect()
    await comm.send_json_to([1])
    assert await comm.receive_json_from() == [1]
    assert await comm.receive_output() == {"type": "websocket.close", "code": 4002}
    await comm.disconnect()


# --- groups through the in-memory layer ------------------------------------------------------

GROUP = f"room-{uuid.uuid4().hex}"


class AsyncRoom(AsyncWebsocketConsumer):
    groups = [GROUP]

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        assert self.channel_layer is not None
        await self.channel_layer.group_send(GROUP, {"type": "room.message", "text": text_data})

    async def room_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=f"async:{event['text']}")


class SyncRoom(WebsocketConsumer):
    groups = [GROUP]

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        assert self.channel_layer is not None
        async_to_sync(self.channel_layer.group_send)(
            GROUP, {"type": "room.message", "text": text_data}
        )

    def room_message(self, event: dict[str, Any]) -> None:
        self.send(text_data=f"sync:{event['text']}")


async def test_groups_join_broadcast_and_leave() -> None:
    a = WebsocketCommunicator(AsyncRoom.as_asgi(), "/room/")
    b = WebsocketCommunicator(SyncRoom.as_asgi(), "/room/")
    assert (await a.connect())[0] and (await b.connect())[0]
    await a.send_to(text_data="hello")
    assert await a.receive_from() == "async:hello"
    assert await b.receive_from() == "sync:hello"
    await b.send_to(text_data="back")
    assert await a.receive_from() == "async:back"
    assert await b.receive_from() == "sync:back"
    await b.disconnect()  # leaves the group
    await a.send_to(text_data="alone")
    assert await a.receive_from() == "async:alone"
    await a.disconnect()
    layer = get_channel_layer()
    assert layer is not None
    # Everyone left: a group send reaches nobody (and does not fail).
    await layer.group_send(GROUP, {"type": "room.message", "text": "void"})


@pytest.mark.parametrize("consumer", [AsyncRoom, SyncRoom])
async def test_groups_without_a_layer_is_a_clear_error(consumer: Any) -> None:
    with override_settings(CHANNEL_LAYERS={}):
        comm = WebsocketCommunicator(consumer.as_asgi(), "/room/")
        await comm.send_input({"type": "websocket.connect"})
        with pytest.raises(InvalidChannelLayerError, match="CHANNEL_LAYERS is unconfigured"):
            await comm.wait()


async def test_groups_as_initkwarg() -> None:
    group = f"g-{uuid.uuid4().hex}"
    comm = WebsocketCommunicator(AsyncRoom.as_asgi(groups=[group]), "/room/")
    await comm.connect()
    layer = get_channel_layer()
    assert layer is not None
    await layer.group_send(group, {"type": "room.message", "text": "via kwarg"})
    assert await comm.receive_from() == "async:via kwarg"
    await comm.disconnect()


def test_groups_default_is_a_fresh_list_per_instance() -> None:
    a, b = AsyncWebsocketConsumer(), WebsocketConsumer()
    assert a.groups == [] and b.groups == []
    assert a.groups is not AsyncWebsocketConsumer().groups


# --- colour mistakes are reported, not silently ignored --------------------------------------


async def test_async_hook_on_a_sync_consumer_is_reported() -> None:
    class Mixed(WebsocketConsumer):
        async def connect(self) -> None:  # type: ignore[override]
            pass

    comm = WebsocketCommunicator(Mixed.as_asgi(), "/ws/")
    await comm.send_input({"type": "websocket.connect"})
    with pytest.raises(TypeError, match="to be a plain method on a sync consumer"):
        await comm.wait()


async def test_sync_hook_on_an_async_consumer_is_reported() -> None:
    class Mixed(AsyncWebsocketConsumer):
        def receive(self, text_data: Any = None, bytes_data: Any = None) -> None:  # type: ignore[override]
            pass

    comm = WebsocketCommunicator(Mixed.as_asgi(), "/ws/")
    await comm.connect()
    await comm.send_to(text_data="x")
    with pytest.raises(TypeError, match="to be 'async def' on an async consumer"):
        await comm.wait()


async def test_consumer_instance_is_an_asgi_app_for_one_connection() -> None:
    # Channels' own tests pass an instance (not .as_asgi()) to the communicator.
    comm = WebsocketCommunicator(SyncEcho(), "/ws/")
    assert (await comm.connect())[0]
    await comm.send_to(text_data="x")
    assert await comm.receive_from() == "echo:x"
    await comm.disconnect()


async def test_url_route_and_query_reach_the_consumer_through_a_router() -> None:
    from django.urls import re_path

    from narrows.routing import URLRouter

    class Room(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()
            room = self.scope["url_route"]["kwargs"]["room"]
            await self.send(text_data=f"{room}?{self.scope['query_string'].decode()}")

    app = URLRouter([re_path(r"^ws/chat/(?P<room>\w+)/$", Room.as_asgi())])
    comm = WebsocketCommunicator(app, "/ws/chat/lobby/?token=abc")
    assert (await comm.connect())[0]
    assert await comm.receive_from() == "lobby?token=abc"
    await comm.disconnect()


# --- a failing handler still leaves its groups and calls disconnect (Channels #1466) ---------

failed_disconnects: list[tuple[str, int]] = []


class AsyncFailing(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        raise RuntimeError(f"cannot handle {text_data}")

    async def disconnect(self, code: int) -> None:
        failed_disconnects.append(("async", code))
        if self.scope["query_string"] == b"bad-disconnect":
            raise KeyError("disconnect failed too")


class SyncFailing(WebsocketConsumer):
    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        raise RuntimeError(f"cannot handle {text_data}")

    def disconnect(self, code: int) -> None:
        failed_disconnects.append(("sync", code))
        if self.scope["query_string"] == b"bad-disconnect":
            raise KeyError("disconnect failed too")


@pytest.mark.parametrize("consumer", [AsyncFailing, SyncFailing])
async def test_failing_handler_leaves_groups_and_calls_disconnect(consumer: Any) -> None:
    failed_disconnects.clear()
    group = f"fail-{uuid.uuid4().hex}"
    layer = get_channel_layer()
    assert layer is not None
    comm = WebsocketCommunicator(consumer.as_asgi(groups=[group]), "/ws/")
    assert (await comm.connect())[0]
    assert len(layer.groups[group]) == 1
    await comm.send_to(text_data="this")
    with pytest.raises(RuntimeError, match="cannot handle this"):
        await comm.wait()
    assert group not in layer.groups
    kind = "async" if consumer is AsyncFailing else "sync"
    assert failed_disconnects == [(kind, 1011)]


@pytest.mark.parametrize("consumer", [AsyncFailing, SyncFailing])
async def test_failing_cleanup_is_logged_and_the_handler_error_raised(
    consumer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    failed_disconnects.clear()
    comm = WebsocketCommunicator(consumer.as_asgi(), "/ws/?bad-disconnect")
    assert (await comm.connect())[0]
    await comm.send_to(text_data="x")
    with pytest.raises(RuntimeError, match="cannot handle x"):
        await comm.wait()
    assert len(failed_disconnects) == 1
    assert "cleanup after a failed handler" in caplog.text
    assert "disconnect failed too" in caplog.text


@pytest.mark.parametrize("consumer", [AsyncFailing, SyncFailing])
async def test_disconnect_is_called_once_when_it_fails_itself(consumer: Any) -> None:
    failed_disconnects.clear()
    comm = WebsocketCommunicator(consumer.as_asgi(), "/ws/?bad-disconnect")
    assert (await comm.connect())[0]
    with pytest.raises(KeyError, match="disconnect failed too"):
        await comm.disconnect(code=1001)
    assert len(failed_disconnects) == 1 and failed_disconnects[0][1] == 1001


@pytest.mark.parametrize("consumer", ECHOES)
async def test_disconnect_without_code_defaults_to_1000(consumer: Any) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/ws/")
    await comm.connect()
    await comm.send_input({"type": "websocket.disconnect"})
    await comm.wait()
    kind = "async" if consumer is AsyncEcho else "sync"
    assert DISCONNECTS[-1] == (kind, 1000)
