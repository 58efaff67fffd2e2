"""RedisChannelLayer specifics: hosts, sharding, encryption, processes and event loops."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from typing import Any

import msgpack
import pytest
from asgiref.sync import async_to_sync

from narrows.layers import ChannelLayerUnavailable
from narrows.layers.redis import HashRing, RedisChannelLayer, decode_hosts
from tests.helpers import ROOT, free_port
from tests.layers.conftest import redis_hosts, unique_prefix
from tests.layers.servers import RedisServer

pytestmark = pytest.mark.needs_redis


@pytest.fixture
async def layers(redis_single: RedisServer) -> Any:
    made: list[RedisChannelLayer] = []
    prefix = unique_prefix()

    def make(**config: Any) -> RedisChannelLayer:
        config.setdefault("hosts", [redis_single.url])
        config.setdefault("prefix", prefix)
        config.setdefault("block_timeout", 1)
        layer = RedisChannelLayer(**config)
        made.append(layer)
        return layer

    yield make
    for layer in made:
        await layer.flush()
        await layer.close()


def test_hosts_in_every_channels_redis_spelling() -> None:
    specs = decode_hosts(
        [
            "redis://:pw@10.0.0.1:6380/2",
            ("10.0.0.2", 6381),
            {"address": "rediss://10.0.0.3:6382", "ssl_cert_reqs": None},
            {"host": "10.0.0.4", "port": 6383, "db": 1},
            {"sentinels": [("10.0.0.5", 26379)], "master_name": "main"},
            {"address": "redis://10.0.0.6:7000", "cluster": True},
        ]
    )
    assert [spec.kind for spec in specs] == [
        "url",
        "params",
        "url",
        "params",
        "sentinel",
        "cluster",
    ]
    assert specs[0].label == "10.0.0.1:6380/2"  # no password in labels (they are logged)
    assert specs[1].options == {"host": "10.0.0.2", "port": 6381}
    assert decode_hosts(None)[0].options == {"address": "redis://localhost:6379"}


@pytest.mark.parametrize(
    ("hosts", "match"),
    [
        ("redis://localhost:6379", "list of Redis hosts, got the single string"),
        ([("h", 1, 2)], r"hosts\[0\] to be \(host, port\)"),
        ([{"master_name": "m"}], "both 'sentinels' and 'master_name'"),
        ([42], r"hosts\[0\] to be a URL.*got int"),
    ],
)
def test_bad_hosts_are_explained(hosts: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RedisChannelLayer(hosts=hosts)


def test_channels_redis_config_keys_are_accepted() -> None:
    layer = RedisChannelLayer(
        hosts=[("127.0.0.1", 6379)],
        prefix="asgi",
        expiry=60,
        group_expiry=86400,
        capacity=100,
        channel_capacity={"http.request": 200, "websocket.send*": 20},
        symmetric_encryption_keys=["secret"],
        random_prefix_length=12,
        serializer_format="msgpack",
    )
    assert layer.get_capacity("websocket.send!x") == 20
    with pytest.raises(TypeError, match=r"unexpected CONFIG key\(s\) \['hots'\]"):
        RedisChannelLayer(hots=[])


def test_hash_ring_spreads_and_moves_little_when_a_shard_is_added() -> None:
    names = [f"specific.{index:06x}!" for index in range(6000)]
    three, four = HashRing(3), HashRing(4)
    counts = [0, 0, 0]
    for name in names:
        counts[three.shard_for(name)] += 1
    assert min(counts) > 1400, counts
    moved = sum(three.shard_for(name) != four.shard_for(name) for name in names)
    assert moved < len(names) * 0.4  # about 1/4 move; modulo hashing would move ~3/4
    assert all(three.shard_for(name) == HashRing(3).shard_for(name) for name in names[:100])


async def test_sharded_layer_spreads_keys_over_every_shard(redis_shards: list[RedisServer]) -> None:
    prefix = unique_prefix()
    layer = RedisChannelLayer(hosts=[server.url for server in redis_shards], prefix=prefix)
    try:
        for index in range(60):
            await layer.send(f"spread.{index}", {"type": "x"})
            await layer.group_add(f"group{index}", f"spread.{index}")
        per_shard = [
            len(server.cli("--scan", "--pattern", f"{prefix}:*").split()) for server in redis_shards
        ]
        assert sum(per_shard) == 120
        assert all(count > 10 for count in per_shard), per_shard
        for index in range(60):
            await layer.group_send(f"group{index}", {"type": "y", "i": index})
        for index in range(60):
            assert (await layer.receive(f"spread.{index}"))["type"] == "x"
            assert (await layer.receive(f"spread.{index}"))["i"] == index
    finally:
        await layer.flush()
        await layer.close()


async def test_two_layers_talk_like_two_processes(layers: Any) -> None:
    server_a, server_b = layers(), layers()
    alice, bob = await server_a.new_channel(), await server_b.new_channel()
    await server_a.group_add("chat", alice)
    await server_b.group_add("chat", bob)
    await server_b.group_send("chat", {"type": "chat.message", "text": "from b"})
    assert (await asyncio.wait_for(server_a.receive(alice), 5))["text"] == "from b"
    assert (await asyncio.wait_for(server_b.receive(bob), 5))["text"] == "from b"
    await server_a.send(bob, {"type": "direct"})
    assert (await asyncio.wait_for(server_b.receive(bob), 5))["type"] == "direct"
    with pytest.raises(ValueError, match="from this layer's new_channel\\(\\)"):
        await server_a.receive(bob)


async def test_group_changes_made_by_another_process_reach_the_owner(
    layers: Any, redis_single: RedisServer
) -> None:
    owner, other = layers(), layers()
    mine = await owner.new_channel()
    await other.group_add("managed", mine)  # e.g. a view in another process
    await other.group_send("managed", {"type": "hello"})
    assert (await asyncio.wait_for(owner.receive(mine), 5))["type"] == "hello"
    await other.group_discard("managed", mine)
    await other.group_send("managed", {"type": "after.discard"})
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(owner.receive(mine), 0.5)
    # The owner had no member left, so its process left the group in Redis as well.
    group_key = f"{owner.prefix}:group:managed"
    assert redis_single.cli("zcard", group_key).strip() == "0"


async def test_group_send_is_one_envelope_per_process(
    layers: Any, redis_single: RedisServer
) -> None:
    receiver, sender = layers(capacity=1000), layers()
    members = [await receiver.new_channel() for _ in range(50)]
    for channel in members:
        await receiver.group_add("wide", channel)
    await sender.group_send("wide", {"type": "x"})
    process_list = receiver._list_key(members[0][: members[0].index("!") + 1])
    assert redis_single.cli("llen", process_list).strip() == "1"
    got = await asyncio.gather(
        *(asyncio.wait_for(receiver.receive(channel), 5) for channel in members)
    )
    assert all(message == {"type": "x"} for message in got)


async def test_django_less_process_sends_to_a_group(layers: Any, redis_single: RedisServer) -> None:
    layer = layers()
    channel = await layer.new_channel()
    await layer.group_add("alerts", channel)
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from narrows.layers.redis import RedisChannelLayer

        async def main():
            layer = RedisChannelLayer(hosts=[{redis_single.url!r}], prefix={layer.prefix!r})
            await layer.group_send("alerts", {{"type": "alert", "level": "high"}})
            await layer.close()
            assert not [m for m in sys.modules if m.startswith("django")]

        asyncio.run(main())
        """
    )
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "alert", "level": "high"}


async def test_sync_code_sends_through_async_to_sync_from_another_loop(layers: Any) -> None:
    layer = layers()
    channel = await layer.new_channel()
    await layer.group_add("sync.group", channel)

    def sync_view() -> None:  # what a Django view does
        for index in range(3):
            async_to_sync(layer.group_send)("sync.group", {"type": "from.sync", "i": index})

    await asyncio.to_thread(sync_view)
    got = [(await asyncio.wait_for(layer.receive(channel), 5))["i"] for _ in range(3)]
    assert got == [0, 1, 2]


async def test_sync_code_adds_a_consumer_channel_to_a_group(layers: Any) -> None:
    layer = layers()
    channel = await layer.new_channel()  # the consumer, on the server's event loop

    def sync_view() -> None:  # a Django view, in a thread with its own event loops
        async_to_sync(layer.group_add)("from.view", channel)
        async_to_sync(layer.group_send)("from.view", {"type": "added"})

    await asyncio.to_thread(sync_view)
    assert (await asyncio.wait_for(layer.receive(channel), 5))["type"] == "added"


async def test_encrypted_messages_are_unreadable_in_redis_and_keys_rotate(
    layers: Any, redis_single: RedisServer
) -> None:
    old = layers(symmetric_encryption_keys=["old-key"])
    await old.send("secret.channel", {"type": "secret", "text": "the plans"})
    stored = redis_single.cli("--no-raw", "lrange", f"{old.prefix}:secret.channel", "0", "-1")
    assert "the plans" not in stored and "secret" not in stored
    # A layer with the new key first and the old one second still reads old messages.
    rotated = layers(symmetric_encryption_keys=["new-key", "old-key"])
    message = await asyncio.wait_for(rotated.receive("secret.channel"), 5)
    assert message == {"type": "secret", "text": "the plans"}


async def test_encrypted_group_send_reaches_members(layers: Any) -> None:
    sender = layers(symmetric_encryption_keys=["k"])
    receiver = layers(symmetric_encryption_keys=["k"])
    members = [await receiver.new_channel() for _ in range(3)]
    for channel in members:
        await receiver.group_add("secret.room", channel)
    await receiver.group_add("secret.room", "plain.worker")
    await sender.group_send("secret.room", {"type": "sealed", "n": 7})
    for channel in [*members, "plain.worker"]:
        message = await asyncio.wait_for(receiver.receive(channel), 5)
        assert message == {"type": "sealed", "n": 7}


async def test_message_with_wrong_key_is_dropped_and_counted(layers: Any) -> None:
    writer = layers(symmetric_encryption_keys=["one"])
    reader = layers(symmetric_encryption_keys=["two"])
    await writer.send("enc", {"type": "x"})
    await writer.send("enc", {"type": "y"})
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(reader.receive("enc"), 0.5)
    assert reader.dropped["undecodable (InvalidToken)"] == 2


async def test_unpackable_message_is_refused_at_send(layers: Any) -> None:
    layer = layers()
    with pytest.raises(TypeError, match="msgpack types"):
        await layer.send("x", {"type": "x", "when": object()})


async def test_envelope_is_plain_msgpack_without_keys(layers: Any) -> None:
    layer = layers()
    await layer.send("plain", {"type": "p", "n": 1})
    client = layer._client(layer._state(), 0)
    raw = await client.lindex(f"{layer.prefix}:plain", 0)
    deadline, targets, message = msgpack.unpackb(raw)
    assert targets is None and message == {"type": "p", "n": 1}
    assert time.time() < deadline <= time.time() + layer.expiry


async def test_unreachable_redis_raises_after_retry_timeout() -> None:
    layer = RedisChannelLayer(hosts=[("127.0.0.1", free_port())], retry_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ChannelLayerUnavailable, match=r"unreachable for 0\.5s during send"):
        await layer.send("x", {"type": "x"})
    assert time.monotonic() - started < 5
    await layer.close()


def test_a_channel_made_in_one_event_loop_is_received_in_another(
    redis_single: RedisServer,
) -> None:
    # Each async_to_sync call below runs in an event loop of its own.
    layer = RedisChannelLayer(hosts=[redis_single.url], prefix=unique_prefix())
    first = async_to_sync(layer.new_channel)()
    second = async_to_sync(layer.new_channel)("other")

    async def send_both() -> None:
        await layer.send(first, {"type": "n", "n": 1})
        await layer.send(second, {"type": "n", "n": 2})

    async def receive(channel: str) -> dict[str, Any]:
        return await asyncio.wait_for(layer.receive(channel), 5)

    async_to_sync(send_both)()
    assert async_to_sync(receive)(second)["n"] == 2
    assert async_to_sync(receive)(first)["n"] == 1  # buffered by the previous loop
    async_to_sync(layer.flush)()


async def test_loops_in_two_threads_receive_at_once(layers: Any) -> None:
    layer = layers()
    channels = [await layer.new_channel(prefix) for prefix in ("a", "b", "a", "b")]

    def receive_in_own_loop(channel: str) -> list[int]:
        async def main() -> list[int]:
            return [(await layer.receive(channel))["i"] for _ in range(20)]

        return asyncio.run(asyncio.wait_for(main(), 20))

    receivers = [asyncio.to_thread(receive_in_own_loop, channel) for channel in channels]
    started = asyncio.gather(*receivers)
    for index in range(20):
        for channel in channels:
            await layer.send(channel, {"type": "n", "i": index})
    assert await started == [list(range(20))] * 4


@pytest.mark.parametrize("kind", ["redis", "sentinel", "cluster"])
async def test_run_id_of_every_kind_of_host_is_read(kind: str, request: Any) -> None:
    # What tells the layer that Redis restarted empty (memberships are then re-added).
    layer = RedisChannelLayer(hosts=redis_hosts(kind, request), prefix=unique_prefix())
    try:
        state = layer._state()
        first = await layer._run_id(state, 0)
        assert first is not None
        assert await layer._run_id(state, 0) == first
    finally:
        await layer.close()
