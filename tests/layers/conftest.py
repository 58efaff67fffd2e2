"""Session-scoped Redis servers (started once, each test uses its own key prefix)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from narrows.layers import InMemoryChannelLayer
from tests.helpers import require_binary
from tests.layers.servers import Cluster, RedisServer, Sentinel

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def redis_binary() -> str:
    return require_binary("redis-server")


@pytest.fixture(scope="session")
def redis_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("redis")


@pytest.fixture(scope="session")
def redis_single(redis_binary: str, redis_workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(redis_binary, redis_workdir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_shards(redis_binary: str, redis_workdir: Path) -> Iterator[list[RedisServer]]:
    servers = [RedisServer(redis_binary, redis_workdir).start() for _ in range(3)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def redis_sentinel(redis_binary: str, redis_workdir: Path) -> Iterator[Sentinel]:
    master = RedisServer(redis_binary, redis_workdir).start()
    sentinel = Sentinel(redis_binary, redis_workdir, master).start()
    yield sentinel
    sentinel.stop()
    master.stop()


@pytest.fixture(scope="session")
def redis_cluster(redis_binary: str, redis_workdir: Path) -> Iterator[Cluster]:
    cluster = Cluster(redis_binary, redis_workdir).start()
    yield cluster
    cluster.stop()


def unique_prefix() -> str:
    return f"t{next(_prefixes)}"


# "cr-*": the Redis layer with channels_redis' storage format (mixed fleets).
LAYER_KINDS = ["inmemory", "redis", "sharded", "sentinel", "cluster", "cr-redis", "cr-sharded"]


def redis_hosts(kind: str, request: pytest.FixtureRequest) -> list[Any]:
    kind = kind.removeprefix("cr-")
    if kind == "redis":
        return [request.getfixturevalue("redis_single").url]
    if kind == "sharded":
        shards = request.getfixturevalue("redis_shards")
        # Every spelling channels_redis accepts: URL, (host, port), dict with address.
        return [shards[0].url, ("127.0.0.1", shards[1].port), {"address": shards[2].url}]
    if kind == "sentinel":
        sentinel = request.getfixturevalue("redis_sentinel")
        return [{"sentinels": [("127.0.0.1", sentinel.port)], "master_name": "mymaster"}]
    if kind == "cluster":
        return [{"address": request.getfixturevalue("redis_cluster").url, "cluster": True}]
    raise ValueError(kind)


@pytest.fixture(params=LAYER_KINDS)
async def make_layer(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Any]]:
    """Build layers of the parametrised kind; all are flushed and closed after the test."""
    kind: str = request.param
    made: list[Any] = []
    prefix = unique_prefix()

    def factory(**config: Any) -> Any:
        if kind == "inmemory":
            layer: Any = InMemoryChannelLayer(**config)
        else:
            from narrows.layers.redis import RedisChannelLayer

            config.setdefault("prefix", prefix)
            config.setdefault("block_timeout", 1)
            if kind.startswith("cr-"):
                config.setdefault("storage", "channels_redis")
            layer = RedisChannelLayer(hosts=redis_hosts(kind, request), **config)
        made.append(layer)
        return layer

    factory.kind = kind  # type: ignore[attr-defined]
    yield factory
    for layer in made:
        await layer.flush()
        await layer.close()
