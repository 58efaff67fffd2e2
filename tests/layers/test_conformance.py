"""One contract, every layer configuration: in-memory, Redis single, sharded, Sentinel, Cluster."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from narrows.layers import ChannelFull, ChannelLayer

pytestmark = pytest.mark.needs_redis

TIMEOUT = 5


async def recv(layer: Any, channel: str) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), TIMEOUT)


async def test_matches_protocol_and_extensions(make_layer: Any) -> None:
    layer = make_layer()
    assert isinstance(layer, ChannelLayer)
    assert {"groups", "flush"} <= set(layer.extensions)


async def test_send_receive_named_channel(make_layer: Any) -> None:
    layer = make_layer()
    await layer.send("tasks.thumbnail", {"type": "thumb.make", "id": 7, "blob": b"\x00\xff"})
    assert await recv(layer, "tasks.thumbnail") == {
        "type": "thumb.make",
        "id": 7,
        "blob": b"\x00\xff",
    }


async def test_send_receive_process_local_channel_keeps_order(make_layer: Any) -> None:
    layer = make_layer()
    channel = await layer.new_channel()
    for index in range(20):
        await layer.send(channel, {"type": "n", "i": index})
    assert [(await recv(layer, channel))["i"] for _ in range(20)] == list(range(20))


async def test_new_channel_names_are_unique_and_valid(make_layer: Any) -> None:
    layer = make_layer()
    made = {await layer.new_channel() for _ in range(50)}
    assert len(made) == 50
    for name in made:
        assert layer.require_valid_channel_name(name)
        assert name.startswith("specific.") and "!" in name
    custom = await layer.new_channel("chat")
    assert custom.startswith("chat.")


async def test_receive_waits_for_a_later_send(make_layer: Any) -> None:
    layer = make_layer()
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(recv(layer, channel))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await layer.send(channel, {"type": "late"})
    assert (await waiting)["type"] == "late"


async def test_each_message_goes_to_one_of_several_receivers(make_layer: Any) -> None:
    layer = make_layer()
    for channel in ["work.queue", await layer.new_channel()]:
        receivers = [asyncio.ensure_future(recv(layer, channel)) for _ in range(3)]
        await asyncio.sleep(0.05)
        for index in range(3):
            await layer.send(channel, {"type": "job", "i": index})
        got = sorted(message["i"] for message in await asyncio.gather(*receivers))
        assert got == [0, 1, 2]


async def test_sender_mutating_after_send_changes_nothing(make_layer: Any) -> None:
    layer = make_layer()
    channel = await layer.new_channel()
    message = {"type": "m", "items": [1, 2]}
    await layer.send(channel, message)
    message["items"].append(3)
    message["type"] = "changed"
    assert await recv(layer, channel) == {"type": "m", "items": [1, 2]}


async def test_cancelled_receive_loses_no_message(make_layer: Any) -> None:
    layer = make_layer()
    for channel in ["jobs.cancel", await layer.new_channel()]:
        waiting = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await layer.send(channel, {"type": "after.cancel"})
        assert (await recv(layer, channel))["type"] == "after.cancel"


def shards_sharing_capacity(make_layer: Any) -> int:
    """How many times a plain channel's capacity fits in the layer: channels_redis sends a
    plain channel's messages to its shards in turn, so in its storage on several hosts the
    capacity counts per shard (3 shards here), as it does in channels_redis."""
    return 3 if make_layer.kind == "cr-sharded" else 1


async def test_capacity_raises_channel_full(make_layer: Any) -> None:
    layer = make_layer(capacity=3)
    room = 3 * shards_sharing_capacity(make_layer)
    for index in range(room):
        await layer.send("bounded", {"type": "x", "i": index})
    with pytest.raises(ChannelFull, match=r"'bounded'.*capacity 3"):
        await layer.send("bounded", {"type": "x", "i": room})
    assert layer.dropped["full"] == 1
    assert (await recv(layer, "bounded"))["i"] in range(shards_sharing_capacity(make_layer))
    if shards_sharing_capacity(make_layer) == 1:
        await layer.send("bounded", {"type": "x", "i": 4})  # room again after a receive


async def test_channel_capacity_patterns_glob_and_regex(make_layer: Any) -> None:
    # Channels' InMemoryChannelLayer crashes on channel_capacity; every narrows layer honours it.
    layer = make_layer(capacity=50, channel_capacity={"small.*": 1, re.compile(r"^tiny-\d+$"): 2})
    shards = shards_sharing_capacity(make_layer)
    for _ in range(shards):
        await layer.send("small.one", {"type": "a"})
    with pytest.raises(ChannelFull):
        await layer.send("small.one", {"type": "b"})
    for _ in range(2 * shards):
        await layer.send("tiny-1", {"type": "a"})
    with pytest.raises(ChannelFull):
        await layer.send("tiny-1", {"type": "c"})
    for index in range(10):
        await layer.send("large", {"type": "ok", "i": index})
    assert layer.get_capacity("small.x") == 1
    assert layer.get_capacity("tiny-9") == 2
    assert layer.get_capacity("other") == 50


async def test_group_send_reaches_members_only(make_layer: Any) -> None:
    layer = make_layer()
    alice, bob, carol = [await layer.new_channel() for _ in range(3)]
    await layer.group_add("room.1", alice)
    await layer.group_add("room.1", bob)
    await layer.group_add("room.2", carol)
    await layer.group_send("room.1", {"type": "chat.message", "text": "hi"})
    assert (await recv(layer, alice))["text"] == "hi"
    assert (await recv(layer, bob))["text"] == "hi"
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(carol), 0.3)
    await layer.group_discard("room.1", bob)
    await layer.group_discard("room.1", "never.added")  # discarding a non-member is fine
    await layer.group_send("room.1", {"type": "chat.message", "text": "bye"})
    assert (await recv(layer, alice))["text"] == "bye"
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(bob), 0.3)


async def test_local_channels_of_every_prefix_receive(make_layer: Any) -> None:
    layer = make_layer()
    first = await layer.new_channel("alpha")
    await layer.send(first, {"type": "one"})
    assert (await recv(layer, first))["type"] == "one"
    # Made while the layer is already receiving for "alpha".
    later = [await layer.new_channel(prefix) for prefix in ("beta", "gamma.delta", "beta")]
    for index, channel in enumerate(later):
        await layer.send(channel, {"type": "direct", "i": index})
        await layer.group_add("prefixes", channel)
    await layer.group_add("prefixes", first)
    assert [(await recv(layer, channel))["i"] for channel in later] == [0, 1, 2]
    await layer.group_send("prefixes", {"type": "group"})
    for channel in [first, *later]:
        assert (await recv(layer, channel))["type"] == "group"
    for channel in [first, *later]:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 0.2)


async def test_group_send_to_named_and_local_channels(make_layer: Any) -> None:
    layer = make_layer()
    local = await layer.new_channel()
    await layer.group_add("mixed", local)
    await layer.group_add("mixed", "worker.audit")
    await layer.group_send("mixed", {"type": "evt"})
    assert (await recv(layer, local))["type"] == "evt"
    assert (await recv(layer, "worker.audit"))["type"] == "evt"


async def test_group_send_fans_out_to_100_members_with_own_copies(make_layer: Any) -> None:
    layer = make_layer()
    members = [await layer.new_channel() for _ in range(100)]
    for channel in members:
        await layer.group_add("big", channel)
    await layer.group_send("big", {"type": "tick", "n": 1})
    received = await asyncio.gather(*(recv(layer, channel) for channel in members))
    assert all(message == {"type": "tick", "n": 1} for message in received)
    received[0]["n"] = 99
    assert received[1]["n"] == 1


async def test_group_send_to_empty_or_unknown_group_is_a_no_op(make_layer: Any) -> None:
    layer = make_layer()
    await layer.group_send("nobody.here", {"type": "x"})


async def test_group_send_skips_full_channel_counts_and_logs_it(
    make_layer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    layer = make_layer(channel_capacity={"stuck": 1})
    ok = await layer.new_channel()
    await layer.group_add("g.full", ok)
    await layer.group_add("g.full", "stuck")
    await layer.send("stuck", {"type": "filler"})
    with caplog.at_level(logging.DEBUG, logger="narrows.layers"):
        await layer.group_send("g.full", {"type": "evt"})
    assert (await recv(layer, ok))["type"] == "evt"
    assert layer.dropped["full"] == 1
    # In-memory: one warning naming both. Redis: channels_redis' INFO line ("1 of 2
    # channels over capacity in group g.full"), the full lists' names at DEBUG.
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "g.full" in logged and "stuck" in logged, logged


async def test_messages_expire_unreceived(make_layer: Any) -> None:
    layer = make_layer(expiry=1)
    local = await layer.new_channel()
    await layer.send("expiring", {"type": "old"})
    await layer.send(local, {"type": "old"})
    await asyncio.sleep(1.3)
    await layer.send("expiring", {"type": "new"})
    await layer.send(local, {"type": "new"})
    assert (await recv(layer, "expiring"))["type"] == "new"
    assert (await recv(layer, local))["type"] == "new"


async def test_group_membership_expires(make_layer: Any) -> None:
    layer = make_layer(group_expiry=1)
    channel = await layer.new_channel()
    await layer.group_add("short", channel)
    await asyncio.sleep(1.3)
    await layer.group_send("short", {"type": "late"})
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.3)


async def test_flush_forgets_messages_and_groups(make_layer: Any) -> None:
    layer = make_layer()
    channel = await layer.new_channel()
    await layer.send("flushed", {"type": "x"})
    await layer.group_add("flush.me", channel)
    await layer.flush()
    await layer.group_send("flush.me", {"type": "x"})
    await layer.send("flushed", {"type": "after"})
    assert (await recv(layer, "flushed"))["type"] == "after"
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.3)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda layer: layer.send("bad name", {"type": "x"}), "Channel name.*'bad name'"),
        (lambda layer: layer.send("x" * 100, {"type": "x"}), "length < 100.*100 characters"),
        (lambda layer: layer.send(b"bytes", {"type": "x"}), "Channel name.*Got bytes"),
        (lambda layer: layer.receive("a$b"), "Channel name.*'a\\$b'"),
        (lambda layer: layer.group_add("bad group!", "ok"), "Group name.*'bad group!'"),
        (lambda layer: layer.group_add("ok", "bad chan"), "Channel name"),
        (lambda layer: layer.group_send("no spaces", {"type": "x"}), "Group name"),
        (lambda layer: layer.group_discard("g" * 101, "ok"), "Group name"),
        (lambda layer: layer.send("ok", ["not", "a", "dict"]), "message dict, got list"),
    ],
)
async def test_invalid_names_and_messages_are_rejected(
    make_layer: Any, call: Any, match: str
) -> None:
    layer = make_layer()
    with pytest.raises(TypeError, match=match):
        await call(layer)


async def test_reserved_key_is_rejected(make_layer: Any) -> None:
    layer = make_layer()
    with pytest.raises(ValueError, match="__asgi_channel__"):
        await layer.send("ok", {"type": "x", "__asgi_channel__": "y"})
