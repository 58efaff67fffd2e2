"""Faults: Redis killed and restarted mid-stream, full channels, receivers that disappear."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from narrows.layers import InMemoryChannelLayer
from narrows.layers.redis import RedisChannelLayer
from narrows.layers.redis.hashing import ChannelsRedisRing, HashRing
from tests.layers.conftest import unique_prefix
from tests.layers.servers import RedisServer, Sentinel

pytestmark = pytest.mark.needs_redis


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def own_redis(redis_binary: str, redis_workdir: Path) -> Any:
    server = RedisServer(redis_binary, redis_workdir).start()
    yield server
    server.stop()


async def test_redis_killed_and_restarted_mid_stream(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="narrows.layers")
    layer = RedisChannelLayer(hosts=[own_redis.url], retry_timeout=20, block_timeout=1)
    channel = await layer.new_channel()
    received: list[int] = []

    async def consume() -> None:
        while True:
            received.append((await layer.receive(channel))["i"])

    consumer = asyncio.ensure_future(consume())
    try:
        for index in range(20):
            await layer.send(channel, {"type": "n", "i": index})
        await eventually(lambda: len(received) == 20)

        own_redis.kill()
        # A send while Redis is down waits (retrying) instead of failing at once...
        during_outage = asyncio.ensure_future(layer.send(channel, {"type": "n", "i": 100}))
        await asyncio.sleep(0.5)
        assert not during_outage.done()
        own_redis.start()  # same port, empty (no persistence)
        # ...and completes once Redis is back; the receive loop reconnected by itself.
        await asyncio.wait_for(during_outage, 20)
        await layer.group_add("after.restart", channel)
        for index in range(200, 220):
            await layer.group_send("after.restart", {"type": "n", "i": index})
        await eventually(lambda: {100, *range(200, 220)} <= set(received), timeout=20)
        assert received[:20] == list(range(20))
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await layer.close()
    messages = [record.getMessage() for record in caplog.records]
    assert any("Lost Redis" in message for message in messages), messages
    assert any("Reconnected to Redis" in message for message in messages), messages
    assert any("unreachable during send" in message for message in messages), messages


async def test_shared_channel_receiver_survives_restart(own_redis: RedisServer) -> None:
    layer = RedisChannelLayer(hosts=[own_redis.url], retry_timeout=20, block_timeout=1)
    try:
        waiting = asyncio.ensure_future(layer.receive("jobs"))
        await asyncio.sleep(0.2)
        own_redis.kill()
        await asyncio.sleep(0.3)
        own_redis.start()
        await layer.send("jobs", {"type": "job", "id": 1})
        assert (await asyncio.wait_for(waiting, 20))["id"] == 1
    finally:
        await layer.close()


async def test_local_buffer_of_a_slow_receiver_evicts_oldest_and_counts(
    redis_single: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    layer = RedisChannelLayer(
        hosts=[redis_single.url], prefix=unique_prefix(), capacity=5, block_timeout=1
    )
    try:
        slow, other = await layer.new_channel(), await layer.new_channel()
        idle = asyncio.ensure_future(layer.receive(other))  # starts the receive loop
        with caplog.at_level(logging.WARNING, logger="narrows.layers"):
            for index in range(12):
                await layer.send(slow, {"type": "n", "i": index})
                await asyncio.sleep(0.03)  # the loop drains Redis into the local buffer
            await eventually(lambda: layer.dropped["evicted"] == 7)
        got = [(await layer.receive(slow))["i"] for _ in range(5)]
        assert got == [7, 8, 9, 10, 11]
        assert any("evicted" in r.getMessage() and slow in r.getMessage() for r in caplog.records)
        idle.cancel()
    finally:
        await layer.flush()
        await layer.close()


async def test_dead_process_fills_up_and_group_sends_to_it_are_counted(
    redis_single: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = unique_prefix()
    dead = RedisChannelLayer(hosts=[redis_single.url], prefix=prefix, capacity=3)
    live = RedisChannelLayer(hosts=[redis_single.url], prefix=prefix, capacity=3)
    try:
        ghost = await dead.new_channel()  # its process never receives again
        await live.group_add("room", ghost)
        with caplog.at_level(logging.DEBUG, logger="narrows.layers"):
            for index in range(5):
                await live.group_send("room", {"type": "n", "i": index})
        # The membership notice of the foreign group_add took one of the 3 places.
        assert live.dropped["full"] == 3
        # Group messages go to the dead process's list: counted at INFO as channels_redis
        # logs it, the list named at DEBUG.
        process_list = ghost[: ghost.index("!") + 1]
        logged = [(r.levelname, r.getMessage()) for r in caplog.records]
        assert logged.count(("INFO", "1 of 1 channels over capacity in group room")) == 3
        assert any("room" in m and process_list in m for _, m in logged), logged
    finally:
        await live.flush()
        await live.close()
        await dead.close()


@pytest.mark.parametrize("kind", ["inmemory", "redis", "redis-cr"])
async def test_receiver_that_disappears_leaves_its_groups_after_expiry(
    kind: str, redis_single: RedisServer
) -> None:
    if kind == "inmemory":
        layer: Any = InMemoryChannelLayer(expiry=1)
    else:
        storage = "channels_redis" if kind == "redis-cr" else "narrows"
        layer = RedisChannelLayer(
            hosts=[redis_single.url],
            prefix=unique_prefix(),
            expiry=1,
            block_timeout=0.3,
            storage=storage,
        )
    try:
        alive, gone = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("room", alive)
        await layer.group_add("room", gone)
        # The consumer of ``gone`` receives once, then goes away without group_discard.
        gone_consumer = asyncio.ensure_future(layer.receive(gone))
        await layer.group_send("room", {"type": "n", "i": 0})
        assert (await asyncio.wait_for(gone_consumer, 5))["i"] == 0
        assert (await asyncio.wait_for(layer.receive(alive), 5))["i"] == 0
        await layer.group_send("room", {"type": "n", "i": 1})  # nobody takes this for ``gone``
        assert (await asyncio.wait_for(layer.receive(alive), 5))["i"] == 1

        async def members() -> set[str]:
            if kind == "inmemory":
                return set(layer.groups.get("room", {}))
            return layer._local.member_channels("room")

        async def poll() -> None:
            while gone in await members():
                receiving = asyncio.ensure_future(layer.receive(alive))
                await asyncio.sleep(0.2)  # layer calls (and the receive loop) sweep
                receiving.cancel()
                await asyncio.gather(receiving, return_exceptions=True)

        await asyncio.wait_for(poll(), 10)
        assert alive in await members()
        assert layer.dropped["expired"] >= 1
    finally:
        await layer.flush()
        await layer.close()


async def test_sentinel_failover_keeps_the_layer_serving(
    redis_binary: str, redis_workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="narrows.layers")
    master = RedisServer(redis_binary, redis_workdir).start()
    replica = RedisServer(
        redis_binary, redis_workdir, extra=["--replicaof", "127.0.0.1", str(master.port)]
    ).start()
    sentinel = Sentinel(redis_binary, redis_workdir, master)
    sentinel.config.write_text(
        sentinel.config.read_text() + "sentinel failover-timeout mymaster 2000\n"
    )
    sentinel.start()
    layer = RedisChannelLayer(
        hosts=[{"sentinels": [("127.0.0.1", sentinel.port)], "master_name": "mymaster"}],
        retry_timeout=30,
        block_timeout=1,
    )
    try:
        await eventually(lambda: "master_link_status:up" in replica.cli("info", "replication"))
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "before"})
        assert (await asyncio.wait_for(layer.receive(channel), 5))["type"] == "before"
        master.kill()
        # Sentinel notices within about a second and promotes the replica; the send waits.
        await asyncio.wait_for(layer.send(channel, {"type": "after"}), 40)
        assert (await asyncio.wait_for(layer.receive(channel), 20))["type"] == "after"
        assert "role:master" in replica.cli("info", "replication")
    finally:
        await layer.close()
        sentinel.stop()
        replica.stop()
        master.stop()


@pytest.mark.parametrize("storage", ["narrows", "channels_redis"])
async def test_group_members_are_re_added_after_redis_restarts_empty(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture, storage: str
) -> None:
    """A chat room keeps working across a Redis restart without persistence: the
    processes put their members back, and the next message reaches every member."""
    caplog.set_level(logging.WARNING, logger="narrows.layers")
    config: dict[str, Any] = {
        "hosts": [own_redis.url],
        "block_timeout": 1,
        "retry_timeout": 20,
        "on_reconnect": "redis.reconnect",
        "storage": storage,
    }
    server_a, server_b, worker = (RedisChannelLayer(**config) for _ in range(3))
    try:
        members = [
            (server_a, await server_a.new_channel()),
            (server_a, await server_a.new_channel("chat")),
            (server_b, await server_b.new_channel()),
        ]
        for layer, channel in members:
            await layer.group_add("room", channel)
        await worker.group_send("room", {"type": "chat.message", "n": 1})
        for layer, channel in members:
            assert (await asyncio.wait_for(layer.receive(channel), 5))["n"] == 1

        own_redis.kill()
        own_redis.start()  # same port, empty
        for layer, channel in members:
            notice = await asyncio.wait_for(layer.receive(channel), 20)
            assert notice == {"type": "redis.reconnect"}
        await worker.group_send("room", {"type": "chat.message", "n": 2})
        for layer, channel in members:
            assert (await asyncio.wait_for(layer.receive(channel), 5))["n"] == 2
        assert own_redis.cli("zcard", "asgi:group:room").strip() == "3"
    finally:
        for layer in (server_a, server_b, worker):
            await layer.flush()
            await layer.close()
    logged = [record.getMessage() for record in caplog.records]
    assert any("re-adding this process's members of 1 group" in m for m in logged), logged


async def test_memberships_come_back_on_a_restarted_shard_the_receive_loop_does_not_use(
    redis_binary: str, redis_workdir: Path
) -> None:
    shards = [RedisServer(redis_binary, redis_workdir).start() for _ in range(2)]
    config: dict[str, Any] = {"hosts": [s.url for s in shards], "block_timeout": 1}
    layer, worker = RedisChannelLayer(**config), RedisChannelLayer(**config)
    try:
        channel = await layer.new_channel()
        list_shard = layer._list_shard(layer._local.marker[1:])
        group = next(
            f"room{i}" for i in range(100) if layer.ring.shard_for(f"room{i}") != list_shard
        )
        await layer.group_add(group, channel)
        await worker.group_send(group, {"type": "n", "n": 0})
        assert (await asyncio.wait_for(layer.receive(channel), 5))["n"] == 0

        restarted = shards[layer.ring.shard_for(group)]
        restarted.kill()
        restarted.start()
        receiving = asyncio.ensure_future(layer.receive(channel))
        deadline = asyncio.get_running_loop().time() + 15
        while not receiving.done():  # a message now and then, as a chat would
            assert asyncio.get_running_loop().time() < deadline, "members never re-added"
            await worker.group_send(group, {"type": "n", "n": 1})
            await asyncio.wait([receiving], timeout=0.3)
        assert receiving.result()["n"] == 1
    finally:
        await layer.close()
        await worker.close()
        for server in shards:
            server.stop()


async def test_memberships_come_back_on_a_restarted_shard_in_channels_redis_storage(
    redis_binary: str, redis_workdir: Path
) -> None:
    """channels_redis storage puts a group on channels_redis' shard (CRC32 slices, not
    narrows' ring): the membership is re-added there, where every process looks."""
    shards = [RedisServer(redis_binary, redis_workdir).start() for _ in range(2)]
    config: dict[str, Any] = {
        "hosts": [s.url for s in shards],
        "block_timeout": 1,
        "storage": "channels_redis",
    }
    layer, worker = RedisChannelLayer(**config), RedisChannelLayer(**config)
    # A group the two hash functions put on different shards.
    group = next(
        f"room{i}"
        for i in range(100)
        if HashRing(2).shard_for(f"room{i}") != ChannelsRedisRing(2).shard_for(f"room{i}")
    )
    group_shard = ChannelsRedisRing(2).shard_for(group)
    try:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        assert shards[group_shard].cli("zcard", f"asgi:group:{group}").strip() == "1"
        await worker.group_send(group, {"type": "n", "n": 0})
        assert (await asyncio.wait_for(layer.receive(channel), 5))["n"] == 0

        shards[group_shard].kill()
        shards[group_shard].start()
        receiving = asyncio.ensure_future(layer.receive(channel))
        deadline = asyncio.get_running_loop().time() + 15
        while not receiving.done():
            assert asyncio.get_running_loop().time() < deadline, "members never re-added"
            await worker.group_send(group, {"type": "n", "n": 1})
            await asyncio.wait([receiving], timeout=0.3)
        assert receiving.result()["n"] == 1
        assert shards[group_shard].cli("zrange", f"asgi:group:{group}", "0", "-1").split() == [
            channel
        ]
        assert shards[1 - group_shard].cli("exists", f"asgi:group:{group}").strip() == "0"
    finally:
        await layer.flush()
        await layer.close()
        await worker.close()
        for server in shards:
            server.stop()
