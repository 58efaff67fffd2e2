"""Exceptions raised by channel layers (Channels' names, so ``except ChannelFull`` keeps working).

``narrows.exceptions`` re-exports these; they live here so ``narrows.layers`` stays usable
without the rest of the framework.
"""

from __future__ import annotations


class ChannelFull(Exception):
    """A send found the channel at its capacity; the message was not queued."""

    def __init__(self, channel: str = "", capacity: int | None = None) -> None:
        self.channel = channel
        self.capacity = capacity
        if channel and capacity is not None:
            message = f"channel {channel!r} is full (capacity {capacity}); message not sent"
        elif channel:
            message = f"channel {channel!r} is full; message not sent"
        else:
            message = "channel is full; message not sent"
        super().__init__(message)


class InvalidChannelLayerError(ValueError):
    """``CHANNEL_LAYERS`` names a layer that cannot be built (bad backend, missing key...)."""


class ChannelLayerUnavailable(ConnectionError):
    """The layer's backing store (Redis) stayed unreachable longer than ``retry_timeout``."""
