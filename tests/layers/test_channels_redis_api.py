"""The channels_redis surface of the Redis layer that its own suite does not pin down:
serializer formats end to end, custom serializers, the pub/sub class, the hooks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from narrows.layers.redis import RedisChannelLayer, RedisPubSubChannelLayer
from narrows.layers.redis.core import ForeignChannelError
from narrows.layers.redis.serializers import (
    BaseMessageSerializer,
    InvalidSerializerError,
    SerializersRegistry,
    registry,
)
from tests.layers.conftest import unique_prefix
from tests.layers.servers import RedisServer

pytestmark = pytest.mark.needs_redis


@pytest.fixture
async def layers(redis_single: RedisServer) -> Any:
    made: list[RedisChannelLayer] = []
    prefix = unique_prefix()

    def make(cls: type[RedisChannelLayer] = RedisChannelLayer, **config: Any) -> Any:
        config.setdefault("hosts", [redis_single.url])
        config.setdefault("prefix", prefix)
        layer = cls(**config)
        made.append(layer)
        return layer

    yield make
    for layer in made:
        await layer.flush()
        await layer.close()


async def test_json_format_end_to_end(layers: Any, redis_single: RedisServer) -> None:
    sender, receiver = layers(serializer_format="json"), layers(serializer_format="json")
    local = await receiver.new_channel()
    await receiver.group_add("json.room", local)
    await sender.send("json.plain", {"type": "a", "n": [1, 2]})
    await sender.group_send("json.room", {"type": "b", "text": "é"})
    assert await asyncio.wait_for(receiver.receive("json.plain"), 5) == {"type": "a", "n": [1, 2]}
    assert await asyncio.wait_for(receiver.receive(local), 5) == {"type": "b", "text": "é"}
    with pytest.raises(TypeError, match="JSONSerializer"):
        await sender.send("json.plain", {"type": "c", "raw": b"\x00"})


class Upper(BaseMessageSerializer):
    """A custom format: JSON with the type upper-cased on the way in (visible in tests)."""

    def as_bytes(self, message: Any, *args: Any, **kwargs: Any) -> bytes:
        import json

        return json.dumps({**message, "type": message["type"].upper()}).encode()

    def from_bytes(self, message: bytes, *args: Any, **kwargs: Any) -> Any:
        import json

        return json.loads(message)


async def test_custom_serializer_from_the_registry(layers: Any) -> None:
    registry.register_serializer("upper", Upper)
    layer = layers(serializer_format="upper")
    await layer.send("custom", {"type": "shout"})
    assert (await asyncio.wait_for(layer.receive("custom"), 5))["type"] == "SHOUT"
    assert layer.deserialize(layer.serialize({"type": "x"})) == {"type": "X"}


def test_registry_refuses_what_cannot_serialize() -> None:
    with pytest.raises(InvalidSerializerError, match="serialize\\(\\) and deserialize\\(\\)"):
        SerializersRegistry().register_serializer("bad", dict)
    assert issubclass(InvalidSerializerError, AssertionError)  # what channels_redis raises


def test_serialize_encrypts_and_prefixes_like_channels_redis() -> None:
    layer = RedisChannelLayer(symmetric_encryption_keys=["key"])
    data = layer.serialize({"type": "secret"})
    assert b"secret" not in data
    assert layer.deserialize(data) == {"type": "secret"}
    assert RedisChannelLayer(random_prefix_length=4).serialize({})[4:] == b"\x80"


async def test_pubsub_class_takes_any_serializable_message(layers: Any) -> None:
    sender = layers(RedisPubSubChannelLayer, on_disconnect="redis.disconnect")
    receiver = layers(RedisPubSubChannelLayer)
    await sender.send("pubsub.plain", "just a string")
    assert await asyncio.wait_for(receiver.receive("pubsub.plain"), 5) == "just a string"
    channel = await receiver.new_channel()
    assert channel.startswith("specific.")
    await sender.send(channel, ["a", "list"])
    assert await asyncio.wait_for(receiver.receive(channel), 5) == ["a", "list"]
    assert sender.serialize({"a": 1}) == b"\x81\xa1a\x01"  # no random prefix by default


async def test_receive_buffer_holds_what_nobody_took_yet(layers: Any) -> None:
    layer = layers()
    waiting, idle = await layer.new_channel(), await layer.new_channel()
    await layer.send(idle, {"type": "later"})
    await layer.send(waiting, {"type": "now"})
    assert (await asyncio.wait_for(layer.receive(waiting), 5))["type"] == "now"
    assert layer.receive_buffer[idle].qsize() == 1
    assert layer.receive_buffer[idle].get_nowait() == {"type": "later"}


async def test_receiving_another_layers_channel_is_an_assertion_error_too(layers: Any) -> None:
    mine, theirs = layers(), layers()
    channel = await theirs.new_channel()
    with pytest.raises(AssertionError, match="from this layer's new_channel"):
        await mine.receive(channel)
    assert issubclass(ForeignChannelError, ValueError)


async def test_disconnect_and_reconnect_hooks_reach_local_channels(
    redis_binary: str, redis_workdir: Path
) -> None:
    server = RedisServer(redis_binary, redis_workdir).start()
    layer = RedisChannelLayer(
        hosts=[server.url],
        block_timeout=1,
        on_disconnect="redis.disconnect",
        on_reconnect="redis.reconnect",
    )
    try:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "hello"})
        assert (await asyncio.wait_for(layer.receive(channel), 5))["type"] == "hello"
        server.kill()
        assert (await asyncio.wait_for(layer.receive(channel), 10))["type"] == "redis.disconnect"
        server.start()
        assert (await asyncio.wait_for(layer.receive(channel), 20))["type"] == "redis.reconnect"
    finally:
        await layer.close()
        server.stop()


def test_hooks_must_be_message_types() -> None:
    with pytest.raises(TypeError, match="on_disconnect to be a message type"):
        RedisChannelLayer(on_disconnect=print)  # type: ignore[arg-type]
