"""Redis channel layer (``pip install narrows[redis]``): many processes, many machines.

``CHANNEL_LAYERS = {"default": {"BACKEND": "narrows.layers.redis.RedisChannelLayer",
"CONFIG": {"hosts": ["redis://127.0.0.1:6379"]}}}`` -- the CONFIG keys of channels_redis.
The modules mirror channels_redis' (``core``, ``pubsub``, ``serializers``, ``utils``), so
``narrows.install_as_channels()`` can serve ``channels_redis.X`` as
``narrows.layers.redis.X``.
"""

from narrows.layers.exceptions import ChannelFull
from narrows.layers.redis.core import RedisChannelLayer
from narrows.layers.redis.hashing import HashRing
from narrows.layers.redis.hosts import HostSpec, decode_hosts
from narrows.layers.redis.pubsub import RedisPubSubChannelLayer

__all__ = [
    "ChannelFull",
    "HashRing",
    "HostSpec",
    "RedisChannelLayer",
    "RedisPubSubChannelLayer",
    "decode_hosts",
]
