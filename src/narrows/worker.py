"""``Worker``: run an application for messages arriving on named channels (``runworker``).

Each named channel gets one long-lived application instance with the scope
``{"type": "channel", "channel": name}``; every message received on that channel from the
channel layer is put on the instance's receive queue. Use a ``ChannelNameRouter`` to send
each channel to its consumer. Built on asgiref's ``StatelessServer`` (instance pooling,
error reporting), as Channels' worker is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from asgiref.server import StatelessServer

from narrows.exceptions import InvalidChannelLayerError
from narrows.layers.base import ChannelLayer
from narrows.types import Message, Scope

__all__ = ["Worker"]

logger = logging.getLogger("narrows.worker")


class Worker(StatelessServer):
    """Listen on ``channels`` of ``channel_layer`` and feed each message to ``application``."""

    def __init__(
        self,
        application: Any,
        channels: Iterable[str],
        channel_layer: ChannelLayer | None,
        max_applications: int = 1000,
    ) -> None:
        super().__init__(application, max_applications)  # type: ignore[no-untyped-call]
        self.channels = list(channels)
        if not self.channels:
            raise ValueError("Worker expected at least one channel name to listen on, got none")
        for name in self.channels:
            if not isinstance(name, str) or not name:
                raise ValueError(f"Worker expected channel names as non-empty str, got {name!r}")
        if channel_layer is None:
            raise InvalidChannelLayerError(
                "Channel layer is not valid: the worker needs CHANNEL_LAYERS configured, got "
                "no layer"
            )
        self.channel_layer = channel_layer

    async def handle(self) -> None:
        """Listen on every channel until one listener fails (the error is raised)."""
        logger.info("Worker listening on channels: %s", ", ".join(self.channels))
        listeners = [asyncio.ensure_future(self.listener(name)) for name in self.channels]
        try:
            done, _ = await asyncio.wait(listeners, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in listeners:
                task.cancel()

    async def listener(self, channel: str) -> None:
        """Receive from one channel forever, handing each message to its instance."""
        while True:
            message: Message = await self.channel_layer.receive(channel)
            if not message.get("type"):
                raise ValueError(
                    f"Worker received a message with no type on channel {channel!r}: "
                    f"expected a 'type' key, got keys {sorted(message)}"
                )
            scope: Scope = {"type": "channel", "channel": channel}
            instance_queue = self.get_or_create_application_instance(  # type: ignore[no-untyped-call]
                channel, scope
            )
            await instance_queue.put(message)

    async def application_send(self, scope: Scope, message: Message) -> None:
        raise RuntimeError(
            f"a worker application for channel {scope.get('channel')!r} tried to send "
            f"{message.get('type')!r} to its client: channel scopes have no client (send over "
            "the channel layer instead)"
        )
