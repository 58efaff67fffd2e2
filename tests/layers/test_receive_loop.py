"""The Redis layer's receive loop: every local channel receives, and a cancelled loop stops."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from narrows.layers.redis import RedisChannelLayer
from tests.helpers import ROOT
from tests.layers.conftest import unique_prefix
from tests.layers.servers import RedisServer

pytestmark = pytest.mark.needs_redis


@pytest.fixture
async def layers(redis_single: RedisServer) -> Any:
    made: list[RedisChannelLayer] = []
    prefix = unique_prefix()

    def make(**config: Any) -> RedisChannelLayer:
        config.setdefault("hosts", [redis_single.url])
        config.setdefault("prefix", prefix)
        layer = RedisChannelLayer(**config)
        made.append(layer)
        return layer

    yield make
    for layer in made:
        await layer.flush()
        await layer.close()


async def test_channels_of_every_prefix_receive_direct_messages(layers: Any) -> None:
    # A long block_timeout: a list the running pop does not watch would wait that long.
    receiver, sender = layers(block_timeout=30), layers()
    alpha = await receiver.new_channel("alpha")
    await sender.send(alpha, {"type": "to.alpha"})
    assert (await asyncio.wait_for(receiver.receive(alpha), 5))["type"] == "to.alpha"
    # The receive loop is now blocked on alpha's list; channels made afterwards, with
    # other prefixes, receive at once all the same.
    beta = await receiver.new_channel("beta")
    plain = await receiver.new_channel()
    await sender.send(beta, {"type": "to.beta"})
    await sender.send(plain, {"type": "to.specific"})
    assert (await asyncio.wait_for(receiver.receive(beta), 2))["type"] == "to.beta"
    assert (await asyncio.wait_for(receiver.receive(plain), 2))["type"] == "to.specific"
    await sender.send(alpha, {"type": "alpha.again"})
    assert (await asyncio.wait_for(receiver.receive(alpha), 2))["type"] == "alpha.again"


async def test_group_members_of_several_prefixes_get_one_copy_each(layers: Any) -> None:
    receiver, sender = layers(), layers()
    members = [await receiver.new_channel(prefix) for prefix in ("a", "b", "b", "specific")]
    for channel in members:
        await receiver.group_add("room", channel)
    await sender.group_send("room", {"type": "hello"})
    for channel in members:
        assert (await asyncio.wait_for(receiver.receive(channel), 5))["type"] == "hello"
    for channel in members:  # one copy each, not one per process list
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(receiver.receive(channel), 0.3)


async def test_capacity_is_per_process_list(layers: Any) -> None:
    receiver, sender = layers(capacity=2), layers(capacity=2)
    busy, quiet = await receiver.new_channel("busy"), await receiver.new_channel("quiet")
    await receiver.group_add("g", busy)
    await receiver.group_add("g", quiet)
    await sender.send(busy, {"type": "direct"})
    for index in range(2):
        await sender.group_send("g", {"type": "group", "i": index})
    # busy's list was full for the second group message; quiet's was not.
    got_quiet = [(await asyncio.wait_for(receiver.receive(quiet), 5))["i"] for _ in range(2)]
    assert got_quiet == [0, 1]
    assert (await asyncio.wait_for(receiver.receive(busy), 5))["type"] == "direct"
    assert (await asyncio.wait_for(receiver.receive(busy), 5))["i"] == 0
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(receiver.receive(busy), 0.3)
    assert sender.dropped["full"] == 1


async def test_cancelled_receive_loop_stops(redis_single: RedisServer) -> None:
    """redis-py sometimes swallows the CancelledError of a pop cut short and returns as
    if the pop had timed out; the loop must stop all the same. The race needs a pop in
    flight at the cancel, so it is tried many times with messages flowing."""
    rng = random.Random(7)
    for _ in range(40):
        layer = RedisChannelLayer(hosts=[redis_single.url], prefix=unique_prefix())
        channel = await layer.new_channel()
        receiving = asyncio.ensure_future(layer.receive(channel))
        stop = asyncio.Event()

        async def flood(layer: RedisChannelLayer, channel: str, stop: asyncio.Event) -> None:
            while not stop.is_set():
                await layer.send(channel, {"type": "x"})
                await asyncio.sleep(rng.random() * 0.002)

        flooding = asyncio.ensure_future(flood(layer, channel, stop))
        await asyncio.sleep(rng.random() * 0.03)
        loop_task = layer._state().receiver
        assert loop_task is not None
        loop_task.cancel()
        done, _ = await asyncio.wait([loop_task], timeout=2)
        stop.set()
        await flooding
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)
        await layer.flush()
        await layer.close()
        assert done, "the receive loop kept running after it was cancelled"


def test_asyncio_run_returns_while_receives_are_pending(redis_single: RedisServer) -> None:
    """The loop ending with receives in flight (a server shutting down, a test's event
    loop torn down by pytest-asyncio) cancels the receive loop; asyncio.run() returns."""
    script = textwrap.dedent(
        f"""
        import asyncio, random
        from narrows.layers.redis import RedisChannelLayer

        async def main(round):
            layer = RedisChannelLayer(hosts=[{redis_single.url!r}], prefix=f"run{{round}}")
            channels = [await layer.new_channel(p) for p in ("specific", "chat", "chat")]
            for channel in channels:
                asyncio.ensure_future(layer.receive(channel))
            async def flood():
                while True:
                    for channel in channels:
                        try:
                            await layer.send(channel, {{"type": "x"}})
                        except Exception:  # ChannelFull: the receivers lag
                            pass
                    await asyncio.sleep(random.random() * 0.002)
            asyncio.ensure_future(flood())
            await asyncio.sleep(random.random() * 0.03)

        for round in range(25):
            asyncio.run(main(round))
        print("all returned")
        """
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=90,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"asyncio.run() did not return: {exc}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "all returned" in result.stdout
