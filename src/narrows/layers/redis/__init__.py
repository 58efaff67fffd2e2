"""Redis channel layer (``pip install narrows[redis]``): many processes, many machines.

``CHANNEL_LAYERS = {"default": {"BACKEND": "narrows.layers.redis.RedisChannelLayer",
"CONFIG": {"hosts": ["redis://127.0.0.1:6379"]}}}`` -- the CONFIG keys of channels_redis.
"""

from narrows.layers.redis.core import RedisChannelLayer
from narrows.layers.redis.hashing import HashRing
from narrows.layers.redis.hosts import HostSpec, decode_hosts

__all__ = ["HashRing", "HostSpec", "RedisChannelLayer", "decode_hosts"]
