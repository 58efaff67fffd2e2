"""Worker: messages on named channels reach a ChannelNameRouter's consumers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from narrows.consumer import AsyncConsumer, SyncConsumer
from narrows.exceptions import InvalidChannelLayerError
from narrows.layers import InMemoryChannelLayer
from narrows.routing import ChannelNameRouter
from narrows.worker import Worker


class AsyncThumbnailer(AsyncConsumer):
    async def thumbnail_make(self, message: dict[str, Any]) -> None:
        assert self.scope == {"type": "channel", "channel": "thumbnails"}
        assert self.channel_layer is not None
        await self.channel_layer.send(message["reply_to"], {"type": "done", "by": "async"})


class SyncMailer(SyncConsumer):
    def mail_send(self, message: dict[str, Any]) -> None:
        from asgiref.sync import async_to_sync

        assert self.channel_layer is not None
        async_to_sync(self.channel_layer.send)(
            message["reply_to"], {"type": "done", "by": "sync", "to": message["to"]}
        )


@pytest.mark.django_db(transaction=True)
async def test_worker_routes_channels_to_consumers(settings: Any) -> None:
    alias = f"worker-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "narrows.layers.InMemoryChannelLayer"},
        alias: {"BACKEND": "narrows.layers.InMemoryChannelLayer"},
    }
    from narrows.layers import get_channel_layer

    layer = get_channel_layer(alias)
    assert layer is not None
    app = ChannelNameRouter(
        {
            "thumbnails": AsyncThumbnailer.as_asgi(channel_layer_alias=alias),
            "mail": SyncMailer.as_asgi(channel_layer_alias=alias),
        }
    )
    worker = Worker(app, ["thumbnails", "mail"], layer)
    running = asyncio.create_task(worker.arun())
    try:
        reply_to = await layer.new_channel()
        await layer.send("thumbnails", {"type": "thumbnail.make", "reply_to": reply_to})
        await layer.send("mail", {"type": "mail.send", "reply_to": reply_to, "to": "a@b"})
        await layer.send("mail", {"type": "mail.send", "reply_to": reply_to, "to": "c@d"})
        replies = [await asyncio.wait_for(layer.receive(reply_to), 5) for _ in range(3)]
        assert sorted((r["by"], r.get("to")) for r in replies) == [
            ("async", None),
            ("sync", "a@b"),
            ("sync", "c@d"),
        ]
        # One long-lived instance per channel.
        assert set(worker.application_instances) == {"thumbnails", "mail"}
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running


async def test_worker_rejects_message_without_type() -> None:
    layer = InMemoryChannelLayer()
    worker = Worker(AsyncThumbnailer.as_asgi(), ["jobs"], layer)
    await layer.send("jobs", {"no": "type"})
    with pytest.raises(ValueError, match="no type on channel 'jobs'"):
        await asyncio.wait_for(worker.handle(), 5)


def test_worker_argument_checks() -> None:
    layer = InMemoryChannelLayer()
    with pytest.raises(InvalidChannelLayerError, match="needs CHANNEL_LAYERS"):
        Worker(AsyncThumbnailer.as_asgi(), ["a"], None)
    with pytest.raises(ValueError, match="at least one channel"):
        Worker(AsyncThumbnailer.as_asgi(), [], layer)
    with pytest.raises(ValueError, match="non-empty str"):
        Worker(AsyncThumbnailer.as_asgi(), [""], layer)


async def test_worker_application_cannot_send_to_a_client() -> None:
    layer = InMemoryChannelLayer()
    worker = Worker(AsyncThumbnailer.as_asgi(), ["a"], layer)
    with pytest.raises(RuntimeError, match="channel scopes have no client"):
        await worker.application_send({"type": "channel", "channel": "a"}, {"type": "x"})
