"""narrows.utils (name_that_thing, await_many_dispatch), narrows.sync and narrows.exceptions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from narrows import exceptions
from narrows.exceptions import StopConsumer
from narrows.sync import call_async, call_hook, run_sync
from narrows.utils import await_many_dispatch, name_that_thing


def plain_function() -> None:
    pass


class Thing:
    def method(self) -> None:
        pass

    @classmethod
    def cmethod(cls) -> None:
        pass


def test_name_that_thing() -> None:
    here = __name__
    assert name_that_thing(plain_function) == f"{here}.plain_function"
    assert name_that_thing(Thing) == f"{here}.Thing"
    assert name_that_thing(Thing()) == f"{here}.Thing"
    assert name_that_thing(Thing().method) == f"{here}.Thing.method"
    assert name_that_thing(Thing.cmethod) == f"{here}.Thing.cmethod"
    assert name_that_thing(len) == "builtins.len"
    assert name_that_thing(asyncio) == "asyncio"


async def test_await_many_dispatch_interleaves_sources_in_order() -> None:
    a: asyncio.Queue[Any] = asyncio.Queue()
    b: asyncio.Queue[Any] = asyncio.Queue()
    seen: list[Any] = []

    async def dispatch(message: Any) -> None:
        seen.append(message)
        if message == "stop":
            raise StopConsumer

    for item in ("a1", "a2"):
        a.put_nowait(item)
    runner = asyncio.create_task(await_many_dispatch([a.get, b.get], dispatch))
    await asyncio.sleep(0.01)
    b.put_nowait("b1")
    await asyncio.sleep(0.01)
    a.put_nowait("a3")
    await asyncio.sleep(0.01)
    b.put_nowait("stop")
    with pytest.raises(StopConsumer):
        await runner
    assert seen == ["a1", "a2", "b1", "a3", "stop"]
    # The pending get on the other source was cancelled: nothing is taken from it later.
    a.put_nowait("left")
    await asyncio.sleep(0.01)
    assert a.qsize() == 1


async def test_await_many_dispatch_waits_for_dispatch_before_receiving_again() -> None:
    received = 0
    release = asyncio.Event()
    source: asyncio.Queue[int] = asyncio.Queue()

    async def get() -> int:
        nonlocal received
        value = await source.get()
        received += 1
        return value

    async def dispatch(message: int) -> None:
        await release.wait()

    for i in range(3):
        source.put_nowait(i)
    runner = asyncio.create_task(await_many_dispatch([get], dispatch))
    await asyncio.sleep(0.02)
    assert received == 1  # the next message is not taken while the first is dispatched
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert source.qsize() == 2


async def test_await_many_dispatch_raises_source_errors() -> None:
    async def broken() -> Any:
        raise ConnectionError("layer down")

    async def forever() -> Any:
        await asyncio.Event().wait()

    async def dispatch(message: Any) -> None:
        pass

    with pytest.raises(ConnectionError, match="layer down"):
        await await_many_dispatch([forever, broken], dispatch)


async def test_await_many_dispatch_stop_from_a_secondary_source() -> None:
    client: asyncio.Queue[Any] = asyncio.Queue()
    layer: asyncio.Queue[Any] = asyncio.Queue()
    seen: list[Any] = []

    async def dispatch(message: Any) -> None:
        seen.append(message)
        if message == "stop":
            raise StopConsumer

    runner = asyncio.create_task(await_many_dispatch([client.get, layer.get], dispatch))
    client.put_nowait("c1")
    await asyncio.sleep(0.01)
    layer.put_nowait("stop")
    with pytest.raises(StopConsumer):
        await asyncio.wait_for(runner, 2)
    assert seen == ["c1", "stop"]


async def test_await_many_dispatch_source_failure_waits_for_running_handler() -> None:
    client: asyncio.Queue[Any] = asyncio.Queue()
    finished: list[str] = []
    fail = asyncio.Event()

    async def layer_receive() -> Any:
        await fail.wait()
        raise ConnectionError("layer down")

    async def dispatch(message: Any) -> None:
        fail.set()  # the layer fails while this handler is still running
        await asyncio.sleep(0.02)
        finished.append(message)

    client.put_nowait("c1")
    with pytest.raises(ConnectionError, match="layer down"):
        await asyncio.wait_for(await_many_dispatch([client.get, layer_receive], dispatch), 2)
    assert finished == ["c1"]  # the handler was not interrupted half-way


async def test_await_many_dispatch_logs_a_message_dropped_at_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client: asyncio.Queue[Any] = asyncio.Queue()
    layer: asyncio.Queue[Any] = asyncio.Queue()
    in_handler = asyncio.Event()

    async def dispatch(message: Any) -> None:
        if message["type"] == "client.stop":
            in_handler.set()
            await asyncio.sleep(0.05)  # the layer message arrives meanwhile
            raise StopConsumer

    client.put_nowait({"type": "client.stop"})
    runner = asyncio.create_task(await_many_dispatch([client.get, layer.get], dispatch))
    await in_handler.wait()
    layer.put_nowait({"type": "chat.message"})
    with caplog.at_level("INFO", logger="narrows.consumer"), pytest.raises(StopConsumer):
        await runner
    assert "dispatching a received 'chat.message' message; dropped" in caplog.text


async def test_await_many_dispatch_needs_a_source() -> None:
    async def dispatch(message: Any) -> None:
        pass

    with pytest.raises(ValueError, match="at least one source"):
        await await_many_dispatch([], dispatch)


def test_run_sync_refuses_a_coroutine_that_suspends() -> None:
    async def suspends() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="to finish without suspending"):
        run_sync(suspends())


def test_run_sync_returns_and_raises() -> None:
    async def value() -> int:
        return 7

    async def fails() -> None:
        raise KeyError("k")

    assert run_sync(value()) == 7
    with pytest.raises(KeyError):
        run_sync(fails())


async def test_call_hook_in_both_colours() -> None:
    def plain(x: int) -> int:
        return x + 1

    async def coro(x: int) -> int:
        return x + 2

    assert await call_hook(False, coro, 1) == 3
    assert await call_hook(True, plain, 1) == 2
    with pytest.raises(TypeError, match="to be 'async def' on an async consumer"):
        await call_hook(False, plain, 1)
    with pytest.raises(TypeError, match="to be a plain method on a sync consumer"):
        await call_hook(True, coro, 1)


async def test_call_async_bridges_for_sync_callers() -> None:
    async def double(x: int) -> int:
        return 2 * x

    assert await call_async(False, double, 4) == 8
    # Sync colour: from a worker thread, through async_to_sync back onto this loop.
    result = await asyncio.to_thread(lambda: run_sync(call_async(True, double, 5)))
    assert result == 10


def test_exceptions_match_channels() -> None:
    assert issubclass(exceptions.RequestTimeout, exceptions.RequestAborted)
    assert issubclass(exceptions.InvalidChannelLayerError, ValueError)
    from narrows.layers import ChannelFull, InvalidChannelLayerError

    assert exceptions.ChannelFull is ChannelFull
    assert exceptions.InvalidChannelLayerError is InvalidChannelLayerError
    for name in (
        "AcceptConnection",
        "DenyConnection",
        "MessageTooLarge",
        "StopConsumer",
        "RequestAborted",
    ):
        assert issubclass(getattr(exceptions, name), Exception)
