"""End to end: a Channels-style consumer on the Redis layer, reached from another process."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.test import override_settings

import narrows.exceptions
from narrows.generic.websocket import AsyncJsonWebsocketConsumer
from narrows.layers import ChannelFull
from narrows.layers.redis import RedisChannelLayer
from narrows.testing import WebsocketCommunicator
from tests.layers.conftest import unique_prefix
from tests.layers.servers import RedisServer

pytestmark = pytest.mark.needs_redis


class RoomConsumer(AsyncJsonWebsocketConsumer):
    groups = ["lobby"]

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"text": event["text"]})


def test_exceptions_are_the_same_classes() -> None:
    assert narrows.exceptions.ChannelFull is ChannelFull


async def test_consumer_receives_a_group_send_from_another_process(
    redis_single: RedisServer,
) -> None:
    prefix = unique_prefix()
    config = {
        "default": {
            "BACKEND": "narrows.layers.redis.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_single.url], "prefix": prefix},
        }
    }
    with override_settings(CHANNEL_LAYERS=config):
        from narrows.layers import get_channel_layer

        site_layer = get_channel_layer()
        communicator = WebsocketCommunicator(RoomConsumer.as_asgi(), "/ws/room/")
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        other_process = RedisChannelLayer(hosts=[redis_single.url], prefix=prefix)
        try:
            await other_process.group_send("lobby", {"type": "chat.message", "text": "hi all"})
            assert await communicator.receive_json_from(timeout=5) == {"text": "hi all"}
            await communicator.disconnect()
            # The consumer left the group on disconnect: its process is no longer in it.
            await asyncio.sleep(0.1)
            assert redis_single.cli("zcard", f"{prefix}:group:lobby").strip() == "0"
        finally:
            await other_process.close()
            await site_layer.flush()
            await site_layer.close()
