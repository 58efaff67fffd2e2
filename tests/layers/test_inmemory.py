"""InMemoryChannelLayer specifics: cleanup of channels whose consumers went away."""

from __future__ import annotations

import asyncio
import logging

import pytest

from narrows.layers import InMemoryChannelLayer


async def test_channel_of_a_receiver_that_went_away_is_forgotten() -> None:
    layer = InMemoryChannelLayer()
    channels = [await layer.new_channel() for _ in range(200)]
    receivers = [asyncio.ensure_future(layer.receive(channel)) for channel in channels]
    await asyncio.sleep(0)
    assert len(layer.channels) == 200
    for receiver in receivers:
        receiver.cancel()
    await asyncio.gather(*receivers, return_exceptions=True)
    assert layer.channels == {}


async def test_dead_channel_is_swept_out_of_groups_after_expiry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    layer = InMemoryChannelLayer(expiry=0.4)
    alive, dead = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", alive)
    await layer.group_add("room", dead)
    receiving = asyncio.ensure_future(layer.receive(alive))
    await layer.group_send("room", {"type": "one"})
    assert (await receiving)["type"] == "one"
    # ``dead`` never receives: after expiry its message is dropped, counted and logged, and
    # it leaves the group, so later group sends stop piling up for it.
    await asyncio.sleep(0.6)
    with caplog.at_level(logging.WARNING, logger="narrows.layers"):
        layer.sweep()
    assert layer.dropped["expired"] == 1
    assert dead not in layer.channels
    assert set(layer.groups["room"]) == {alive}
    assert any("expired" in r.getMessage() and dead in r.getMessage() for r in caplog.records)


async def test_sweep_runs_on_receive_and_group_send_not_on_send() -> None:
    layer = InMemoryChannelLayer(expiry=0.2)
    await layer.send("nobody.reads", {"type": "x"})
    await asyncio.sleep(0.3)
    await layer.send("other", {"type": "y"})  # send does not sweep (as in Channels)
    assert set(layer.channels) == {"nobody.reads", "other"}
    assert (await layer.receive("other"))["type"] == "y"  # receive sweeps when due
    assert layer.channels == {}
    assert layer.dropped["expired"] == 1

    await layer.send("nobody.reads", {"type": "x"})
    await asyncio.sleep(0.3)
    await layer.group_send("empty.group", {"type": "z"})  # so does group_send
    assert layer.channels == {}
    assert layer.dropped["expired"] == 2


async def test_group_discard_of_last_group_forgets_idle_channel() -> None:
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("a", channel)
    await layer.group_send("a", {"type": "x"})
    assert (await layer.receive(channel))["type"] == "x"
    await layer.group_discard("a", channel)
    assert channel not in layer.channels
    assert layer.groups == {}


async def test_flush_keeps_waiting_receivers() -> None:
    layer = InMemoryChannelLayer()
    waiting = asyncio.ensure_future(layer.receive("keep"))
    await asyncio.sleep(0)
    await layer.flush()
    await layer.send("keep", {"type": "after"})
    assert (await asyncio.wait_for(waiting, 2))["type"] == "after"


async def test_message_handed_to_a_cancelled_receiver_goes_to_the_next() -> None:
    layer = InMemoryChannelLayer()
    first = asyncio.ensure_future(layer.receive("c"))
    second = asyncio.ensure_future(layer.receive("c"))
    await asyncio.sleep(0)
    await layer.send("c", {"type": "only"})  # handed to ``first``...
    first.cancel()  # ...which is cancelled before it runs
    assert (await asyncio.wait_for(second, 2))["type"] == "only"


def test_unknown_config_key_is_reported() -> None:
    with pytest.raises(TypeError, match=r"unexpected CONFIG key\(s\) \['hosts'\]"):
        InMemoryChannelLayer(hosts=["redis://x"])


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"capacity": 0}, "capacity to be a positive int, got 0"),
        ({"expiry": 0}, "expiry > 0"),
        ({"channel_capacity": {"x.*": -1}}, r"channel_capacity\['x.\*'\] to be a positive int"),
    ],
)
def test_bad_settings_are_rejected(config: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        InMemoryChannelLayer(**config)  # type: ignore[arg-type]
