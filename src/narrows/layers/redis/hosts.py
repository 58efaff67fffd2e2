"""``hosts`` as channels_redis accepts them, plus Redis Cluster.

Each entry is one shard of the hash ring:

* ``"redis://[:password@]host:port/db"`` (or ``rediss://``, ``unix://``): a URL;
* ``("host", port)``: a tuple or list;
* ``{"address": "redis://...", **connection_kwargs}``: a URL plus redis-py keywords;
* ``{"host": ..., "port": ..., **connection_kwargs}``: redis-py keywords;
* ``{"sentinels": [("host", 26379), ...], "master_name": "mymaster",
  "sentinel_kwargs": {...}, **connection_kwargs}``: the master Sentinel names, followed
  across failovers;
* ``{"address": "redis://host:port", "cluster": True, **kwargs}``: a Redis Cluster reached
  through that startup node (keys spread over its slots by Redis).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["url", "params", "sentinel", "cluster"]

DEFAULT_HOSTS: list[Any] = ["redis://localhost:6379"]
# Connecting to a host that is down fails within this many seconds unless the entry says.
DEFAULT_CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class HostSpec:
    kind: Kind
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        options = self.options
        if self.kind in {"url", "cluster"} and "address" in options:
            return str(options["address"]).split("@")[-1]
        if self.kind == "sentinel":
            return f"sentinel master {options.get('master_name')!r}"
        return f"{options.get('host', 'localhost')}:{options.get('port', 6379)}"


def decode_hosts(hosts: Sequence[Any] | None) -> list[HostSpec]:
    if not hosts:
        hosts = DEFAULT_HOSTS
    if isinstance(hosts, str | bytes):
        raise ValueError(
            f"Expected hosts to be a list of Redis hosts, got the single string {hosts!r}: "
            f"write [{hosts!r}]"
        )
    return [_decode_one(entry, index) for index, entry in enumerate(hosts)]


def _decode_one(entry: Any, index: int) -> HostSpec:
    if isinstance(entry, str):
        return HostSpec("url", {"address": entry})
    if isinstance(entry, tuple | list):
        if len(entry) != 2:
            raise ValueError(f"Expected hosts[{index}] to be (host, port), got {entry!r}")
        return HostSpec("params", {"host": entry[0], "port": int(entry[1])})
    if isinstance(entry, dict):
        options = dict(entry)
        if options.pop("cluster", False):
            return HostSpec("cluster", options)
        if "sentinels" in options or "master_name" in options:
            if "sentinels" not in options or "master_name" not in options:
                raise ValueError(
                    f"Expected hosts[{index}] to have both 'sentinels' and 'master_name', "
                    f"got keys {sorted(entry)}"
                )
            return HostSpec("sentinel", options)
        if "address" in options:
            return HostSpec("url", options)
        return HostSpec("params", options)
    raise ValueError(
        f"Expected hosts[{index}] to be a URL, a (host, port) tuple or a dict, "
        f"got {type(entry).__name__}"
    )


def make_client(spec: HostSpec, socket_timeout: float | None = None) -> Any:
    """A redis-py asyncio client for ``spec``; call it inside the event loop that uses it.

    ``socket_timeout`` (unless the entry sets its own) bounds every wait for a reply.
    """
    from redis import asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.retry import Retry
    from redis.asyncio.sentinel import Sentinel
    from redis.backoff import NoBackoff

    options = dict(spec.options)
    options.setdefault("socket_connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    options.setdefault("socket_keepalive", True)
    if socket_timeout is not None:
        options.setdefault("socket_timeout", socket_timeout)
    options["decode_responses"] = False
    if spec.kind != "cluster":
        # The layer retries (with its own backoff and ``retry_timeout``) and logs; redis-py's
        # default of three hidden retries with seconds of backoff would only add delay.
        options.setdefault("retry", Retry(NoBackoff(), 0))
    if spec.kind == "url":
        return aioredis.Redis.from_url(options.pop("address"), **options)
    if spec.kind == "params":
        return aioredis.Redis(**options)
    if spec.kind == "sentinel":
        sentinels = [tuple(address) for address in options.pop("sentinels")]
        master_name = options.pop("master_name")
        sentinel_kwargs = options.pop("sentinel_kwargs", None) or {}
        sentinel_kwargs.setdefault("socket_connect_timeout", DEFAULT_CONNECT_TIMEOUT)
        sentinel_master = _sentinel_master_class()
        # (redis-py types this call from 8.x on; earlier releases leave it untyped)
        sentinel = Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call,unused-ignore]
        client = sentinel.master_for(master_name, redis_class=sentinel_master, **options)
        client.sentinel_manager = sentinel
        return client
    if "address" in options:
        return RedisCluster.from_url(options.pop("address"), **options)
    return RedisCluster(**options)


@functools.cache
def _sentinel_master_class() -> Any:
    # Built on first use: redis is imported lazily, like everywhere in this module.
    from redis import asyncio as aioredis

    class SentinelMaster(aioredis.Redis):
        """The master's client; closing it also closes the clients to the Sentinels,
        which redis-py leaves open."""

        sentinel_manager: Any = None

        async def aclose(self, close_connection_pool: bool | None = None) -> None:
            await super().aclose(close_connection_pool)
            if self.sentinel_manager is not None:
                for sentinel in self.sentinel_manager.sentinels:
                    await sentinel.aclose()

    return SentinelMaster
