"""Exceptions of the framework and the channel layers, with Channels' names and bases.

``from channels.exceptions import X`` becomes ``from narrows.exceptions import X`` for every
exception Channels 4.x defines; the class hierarchy is the same so existing ``except``
clauses keep catching what they caught.
"""

from __future__ import annotations

# The layer exceptions live with the layers (usable without the framework); these are the
# same classes, so ``except narrows.exceptions.ChannelFull`` catches what a layer raises.
from narrows.layers.exceptions import ChannelFull, InvalidChannelLayerError

__all__ = [
    "AcceptConnection",
    "ChannelFull",
    "DenyConnection",
    "InvalidChannelLayerError",
    "MessageTooLarge",
    "RequestAborted",
    "RequestTimeout",
    "StopConsumer",
]


class RequestAborted(Exception):
    """The client went away before the request body was read completely."""


class RequestTimeout(RequestAborted):
    """The request body did not arrive in time."""


class AcceptConnection(Exception):
    """Raise from ``connect()`` to accept the WebSocket."""


class DenyConnection(Exception):
    """Raise from ``connect()`` to reject the WebSocket (close code 1000 before accepting)."""


class MessageTooLarge(Exception):
    """A channel-layer message is larger than the layer accepts."""


class StopConsumer(Exception):
    """Raise from a handler to end the consumer cleanly (no error is reported)."""
