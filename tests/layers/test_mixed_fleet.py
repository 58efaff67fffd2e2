"""A fleet moving to narrows one process at a time: a channels_redis process (the real
package, from the peers' venv) and a narrows process with ``"storage": "channels_redis"``
on one redis-server exchange direct, group and plain-channel messages both ways."""

from __future__ import annotations

import asyncio
import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from narrows.layers.redis import RedisChannelLayer
from narrows.layers.redis.hashing import ChannelsRedisRing, HashRing
from tests.compat.suites import IN_CI, ROOT
from tests.layers.conftest import unique_prefix
from tests.layers.servers import RedisServer

pytestmark = pytest.mark.needs_redis

BENCH_PYTHON = ROOT / ".bench-venv" / "bin" / "python"

# The channels_redis process: a consumer-like channel in the group, a worker on the
# plain channel "cr.tasks"; it answers what narrows sends, and group_sends from a sync
# function through async_to_sync, as a Celery task or a cron job does.
CHANNELS_REDIS_PROCESS = textwrap.dedent(
    """
    import asyncio, json, sys
    from asgiref.sync import async_to_sync
    from channels_redis.core import RedisChannelLayer

    config = json.loads(sys.argv[1])
    plain, group_name = config.pop("plain"), config.pop("group")
    client_prefix = config.pop("client_prefix")
    layer = RedisChannelLayer(**config)
    layer.client_prefix = client_prefix  # the test's choice of shard for this process

    def say(**what):
        print(json.dumps(what), flush=True)

    def celery_task(text):
        async_to_sync(layer.group_send)(group_name, {"type": "from.cr.group", "text": text})

    async def main():
        mine = await layer.new_channel()
        await layer.group_add(group_name, mine)
        say(channel=mine)
        direct = await layer.receive(mine)
        for reply_to in direct["reply_to"]:
            await layer.send(reply_to, {"type": "from.cr.direct", "got": direct["text"]})
        group = await layer.receive(mine)
        say(group={"type": group["type"], "blob": group["blob"].hex()})
        if plain:
            task = await layer.receive("cr.tasks")
            await layer.send("narrows.tasks", {"type": "from.cr.task", "got": task["n"]})
        await asyncio.get_running_loop().run_in_executor(None, celery_task, "from celery")
        own = await layer.receive(mine)  # a member of the group it sent to
        say(own=own)
        await layer.close_pools()

    asyncio.run(asyncio.wait_for(main(), 60))
    say(done=True)
    """
)


def disagree(ring: ChannelsRedisRing, own_ring: HashRing, name: str) -> bool:
    return ring.size == 1 or ring.shard_for(name) != own_ring.shard_for(name)


def peers_python() -> Path:
    if not BENCH_PYTHON.exists():
        message = f"the mixed-fleet test needs channels_redis in {BENCH_PYTHON} (run bench/setup)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return BENCH_PYTHON


async def read_line(process: asyncio.subprocess.Process) -> dict[str, Any]:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    if not line:
        assert process.stderr is not None
        raise AssertionError(f"channels_redis process ended: {(await process.stderr.read())!r}")
    result: dict[str, Any] = json.loads(line)
    return result


@pytest.mark.parametrize(
    ("keys", "shards"),
    [(None, 1), (["fleet-secret"], 1), (None, 2)],
    ids=["plain", "encrypted", "two-shards"],
)
async def test_channels_redis_and_narrows_processes_talk_both_ways(
    redis_single: RedisServer, keys: list[str] | None, shards: int
) -> None:
    # Two shards: databases 1 and 2 of one server, as channels_redis' own suite shards.
    hosts = [redis_single.url] if shards == 1 else [f"{redis_single.url}/{i + 1}" for i in range(2)]
    config: dict[str, Any] = {"hosts": hosts, "prefix": unique_prefix()}
    if keys:
        config["symmetric_encryption_keys"] = keys
    # Plain channels with one host only: channels_redis' receive of a plain channel waits
    # on one shard (see narrows.layers.redis.channels_redis_format).
    plain = shards == 1
    # With two shards: a group and a channels_redis process list that narrows' own hash
    # ring would put on the other shard, so only channels_redis' shard choice finds them.
    ring, own_ring = ChannelsRedisRing(shards), HashRing(shards)
    group = next(f"fleet{i}" for i in range(100) if disagree(ring, own_ring, f"fleet{i}"))
    client_prefix = next(
        prefix
        for prefix in (uuid.uuid4().hex for _ in range(100))
        if disagree(ring, own_ring, f"specific.{prefix}!")
    )
    fleet = {"plain": plain, "group": group, "client_prefix": client_prefix}
    process = await asyncio.create_subprocess_exec(
        str(peers_python()),
        "-c",
        CHANNELS_REDIS_PROCESS,
        json.dumps({**config, **fleet}),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd="/",  # channels_redis from the venv, not this checkout
    )
    layer = RedisChannelLayer(storage="channels_redis", **config)
    try:
        theirs = (await read_line(process))["channel"]
        assert theirs.startswith(f"specific.{fleet['client_prefix']}!")
        # A prefix other than "specific": its own key, which the receive loop reads too.
        # channels_redis sends a direct message to the shard of the full channel name:
        # with two shards, one reply lands on each.
        mine = await layer.new_channel("chat")
        reply_to = [mine]
        while shards > 1 and len({ring.shard_for(c) for c in reply_to}) < shards:
            reply_to = [mine, await layer.new_channel("chat")]
        await layer.group_add(group, mine)

        # narrows -> channels_redis, direct; and the answers back.
        hello = {"type": "from.narrows.direct", "text": "hi", "reply_to": reply_to}
        await layer.send(theirs, hello)
        for channel in reply_to:
            answer = await asyncio.wait_for(layer.receive(channel), 10)
            assert answer == {"type": "from.cr.direct", "got": "hi"}

        # narrows -> the group: both processes' members get it.
        await layer.group_send(group, {"type": "from.narrows.group", "blob": b"\x00\xff"})
        assert await asyncio.wait_for(layer.receive(mine), 10) == {
            "type": "from.narrows.group",
            "blob": b"\x00\xff",
        }
        assert (await read_line(process))["group"] == {"type": "from.narrows.group", "blob": "00ff"}

        if plain:  # plain channels both ways (a worker's queue)
            await layer.send("cr.tasks", {"type": "task", "n": 7})
            done = await asyncio.wait_for(layer.receive("narrows.tasks"), 15)
            assert done == {"type": "from.cr.task", "got": 7}

        # channels_redis -> the group, from sync code (a Celery task): narrows' member too.
        from_celery = await asyncio.wait_for(layer.receive(mine), 10)
        assert from_celery == {"type": "from.cr.group", "text": "from celery"}
        assert (await read_line(process))["own"]["text"] == "from celery"
        assert (await read_line(process)) == {"done": True}
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await layer.flush()
        await layer.close()


def test_storage_is_checked() -> None:
    with pytest.raises(ValueError, match="storage to be one of"):
        RedisChannelLayer(storage="channels-redis")
    with pytest.raises(ValueError, match="got a Redis Cluster"):
        RedisChannelLayer(
            hosts=[{"address": "redis://127.0.0.1:7000", "cluster": True}],
            storage="channels_redis",
        )
