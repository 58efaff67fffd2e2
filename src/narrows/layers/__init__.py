"""Channel layers: let consumers in different processes and machines talk.

``InMemoryChannelLayer`` serves one process; ``narrows.layers.redis.RedisChannelLayer``
serves many processes and machines. ``get_channel_layer()`` returns the layer configured
in Django's ``CHANNEL_LAYERS``; everything else works without Django.
"""

from narrows import DEFAULT_CHANNEL_LAYER
from narrows.layers.base import BaseChannelLayer, ChannelLayer, compile_capacities
from narrows.layers.exceptions import (
    ChannelFull,
    ChannelLayerUnavailable,
    InvalidChannelLayerError,
)
from narrows.layers.inmemory import InMemoryChannelLayer
from narrows.layers.manager import ChannelLayerManager, channel_layers, get_channel_layer

__all__ = [
    "DEFAULT_CHANNEL_LAYER",
    "BaseChannelLayer",
    "ChannelFull",
    "ChannelLayer",
    "ChannelLayerManager",
    "ChannelLayerUnavailable",
    "InMemoryChannelLayer",
    "InvalidChannelLayerError",
    "channel_layers",
    "compile_capacities",
    "get_channel_layer",
]
