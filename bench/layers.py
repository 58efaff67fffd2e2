"""Channel-layer benchmark: narrows' RedisChannelLayer vs channels_redis, same redis-server.

Run from the repository root with the peers' venv (see docs/layers.md):

    python3 -m venv .bench-venv
    .bench-venv/bin/pip install channels channels_redis -e '.[redis]'
    .bench-venv/bin/python bench/layers.py [--rounds 5] [--redis-server PATH]

It starts its own redis-server on a free 127.0.0.1 port (no persistence), then runs every
workload for every layer in interleaved rounds (A B C, B C A, ...) so drift on a shared
machine hits all layers alike, and prints per-workload medians and narrows/peer ratios.

Workloads (each run uses two fresh instances of the layer on a fresh key prefix -- a
sending "process" and a receiving "process" -- closed after the run):

* ``p2p-1``: one producer awaits ``send()`` of N messages to one process-local channel
  (``new_channel()``, as consumers use) while one consumer ``receive()``s them; the
  producer stays at most 50 messages ahead (default capacities hold); msg/s.
* ``p2p-50``: the same with 50 producer/consumer pairs at once (a server with 50 busy
  connections); total msg/s.
* ``fanout-100``: 100 members (``new_channel()`` + ``group_add``), each with a receiving
  task; one producer awaits ``group_send()`` M times; deliveries/s (M * 100 / time until
  every member received every message).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# Python puts this script's directory first on sys.path, where bench/django.py would shadow
# Django (which channels_redis imports through Channels).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

P2P_MESSAGES = 1500
P2P_PAIRS = 50
P2P_PAIR_MESSAGES = 60
FANOUT_MEMBERS = 100
FANOUT_MESSAGES = 200
RUN_TIMEOUT = 120.0
WINDOW = 50

_prefixes = itertools.count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(binary: str, port: int, workdir: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


# narrows_cr: narrows with "storage": "channels_redis" (mixed fleets).
LAYERS = ["narrows", "narrows_cr", "channels_redis", "channels_redis_pubsub"]


def make_factories(url: str) -> dict[str, Callable[[str], Any]]:
    """One factory per name in LAYERS; the peers are imported only when installed."""

    def narrows(prefix: str) -> Any:
        from narrows.layers.redis import RedisChannelLayer

        return RedisChannelLayer(hosts=[url], prefix=prefix)

    def narrows_cr(prefix: str) -> Any:
        from narrows.layers.redis import RedisChannelLayer

        return RedisChannelLayer(hosts=[url], prefix=prefix, storage="channels_redis")

    def channels_redis(prefix: str) -> Any:
        from channels_redis.core import RedisChannelLayer

        return RedisChannelLayer(hosts=[url], prefix=prefix)

    def channels_redis_pubsub(prefix: str) -> Any:
        from channels_redis.pubsub import RedisPubSubChannelLayer

        return RedisPubSubChannelLayer(hosts=[url], prefix=prefix)

    return {
        "narrows": narrows,
        "narrows_cr": narrows_cr,
        "channels_redis": channels_redis,
        "channels_redis_pubsub": channels_redis_pubsub,
    }


async def close(layer: Any) -> None:
    if hasattr(layer, "close_pools"):  # channels_redis core
        await layer.flush()
        await layer.close_pools()
    elif type(layer).__module__.startswith("channels_redis"):  # pub/sub: flush closes
        await layer.flush()
    else:
        await layer.flush()
        await layer.close()


async def pair(
    sender: Any, receiver: Any, channel: str, count: int, window: asyncio.Semaphore
) -> None:
    # Producers stay at most WINDOW messages ahead of consumers (all pairs together: the
    # process-local channels of one process share one Redis list in both Redis layers), so
    # every layer runs within its default capacity (100) instead of raising ChannelFull.

    async def produce() -> None:
        for index in range(count):
            await window.acquire()
            await sender.send(channel, {"type": "bench.message", "i": index, "text": "hello"})

    async def consume() -> None:
        for _ in range(count):
            await receiver.receive(channel)
            window.release()

    await asyncio.gather(consume(), produce())


async def p2p_one(sender: Any, receiver: Any) -> float:
    channel = await receiver.new_channel()
    started = time.perf_counter()
    await pair(sender, receiver, channel, P2P_MESSAGES, asyncio.Semaphore(WINDOW))
    return P2P_MESSAGES / (time.perf_counter() - started)


async def p2p_many(sender: Any, receiver: Any) -> float:
    channels = [await receiver.new_channel() for _ in range(P2P_PAIRS)]
    window = asyncio.Semaphore(WINDOW)
    started = time.perf_counter()
    await asyncio.gather(
        *(pair(sender, receiver, channel, P2P_PAIR_MESSAGES, window) for channel in channels)
    )
    return P2P_PAIRS * P2P_PAIR_MESSAGES / (time.perf_counter() - started)


async def fanout(sender: Any, receiver: Any) -> float:
    group = f"bench{next(_prefixes)}"
    members = [await receiver.new_channel() for _ in range(FANOUT_MEMBERS)]
    for channel in members:
        await receiver.group_add(group, channel)

    async def member(channel: str) -> None:
        for _ in range(FANOUT_MESSAGES):
            await receiver.receive(channel)

    receivers = [asyncio.ensure_future(member(channel)) for channel in members]
    await asyncio.sleep(0.2)  # every receiver waiting (pub/sub: subscribed) before timing
    started = time.perf_counter()
    for index in range(FANOUT_MESSAGES):
        await sender.group_send(group, {"type": "bench.broadcast", "i": index, "text": "hi"})
    await asyncio.gather(*receivers)
    return FANOUT_MEMBERS * FANOUT_MESSAGES / (time.perf_counter() - started)


WORKLOADS: dict[str, Callable[[Any, Any], Awaitable[float]]] = {
    "p2p-1": p2p_one,
    "p2p-50": p2p_many,
    "fanout-100": fanout,
}


async def run_one(
    factory: Callable[[str], Any], workload: Callable[[Any, Any], Awaitable[float]]
) -> float:
    # Two instances on one prefix: a sending "process" and a receiving "process".
    prefix = f"b{next(_prefixes)}"
    sender, receiver = factory(prefix), factory(prefix)
    try:
        return await asyncio.wait_for(workload(sender, receiver), RUN_TIMEOUT)
    finally:
        await close(sender)
        await close(receiver)


async def bench(
    url: str,
    rounds: int,
    workloads: dict[str, Callable[[Any, Any], Awaitable[float]]],
    names: list[str],
) -> dict[str, dict[str, list[float]]]:
    factories = make_factories(url)
    results: dict[str, dict[str, list[float]]] = {w: {n: [] for n in names} for w in workloads}
    for round_index in range(rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for workload_name, workload in workloads.items():
            for name in order:
                rate = await run_one(factories[name], workload)
                results[workload_name][name].append(rate)
                print(
                    f"round {round_index + 1} {workload_name:<11} {name:<22} {rate:>10.0f}/s",
                    flush=True,
                )
    return results


def report(results: dict[str, dict[str, list[float]]]) -> None:
    """Medians per layer, then each narrows layer over each other layer: the ratio of the
    medians and, in brackets, the lowest and highest per-round ratio."""
    names = list(next(iter(results.values())))
    ours = [name for name in names if name.startswith("narrows")]
    print("\nmedians (msg/s; fanout: deliveries/s)")
    print(f"{'workload':<12}" + "".join(f"{name:>24}" for name in names))
    for workload, per_layer in results.items():
        medians = [statistics.median(per_layer[name]) for name in names]
        print(f"{workload:<12}" + "".join(f"{median:>24.0f}" for median in medians))
    for mine in ours:
        peers = [name for name in names if name != mine]
        if not peers:
            continue
        print(f"\n{mine} over: median ratio [per-round min-max]")
        print(f"{'workload':<12}" + "".join(f"{name:>24}" for name in peers))
        for workload, per_layer in results.items():
            cells = []
            for peer in peers:
                rounds = [a / b for a, b in zip(per_layer[mine], per_layer[peer], strict=True)]
                ratio = statistics.median(per_layer[mine]) / statistics.median(per_layer[peer])
                cells.append(f"{ratio:.2f}x [{min(rounds):.1f}-{max(rounds):.1f}]")
            print(f"{workload:<12}" + "".join(f"{cell:>24}" for cell in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    parser.add_argument("--redis-url", help="use this running Redis instead of starting one")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (all layers)")
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated subset to run"
    )
    parser.add_argument(
        "--layers", default=",".join(LAYERS), help="comma-separated subset of " + ",".join(LAYERS)
    )
    args = parser.parse_args()
    chosen = {name: WORKLOADS[name] for name in args.workloads.split(",")}
    layers = args.layers.split(",")
    unknown = sorted(set(layers) - set(LAYERS))
    if unknown:
        parser.error(f"unknown layers {unknown}; expected some of {LAYERS}")
    with contextlib.ExitStack() as stack:
        url = args.redis_url
        if url is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory())
            port = free_port()
            proc = start_redis(args.redis_server, port, workdir)
            stack.callback(proc.wait, 10)
            stack.callback(proc.terminate)
            url = f"redis://127.0.0.1:{port}"
        print(
            f"redis-server {url}; python {sys.version.split()[0]}; "
            f"{args.rounds} interleaved rounds",
            flush=True,
        )
        coro = bench(url, args.rounds, chosen, layers)
        if args.uvloop:
            import uvloop

            results = uvloop.run(coro)
        else:
            results = asyncio.run(coro)
        report(results)


if __name__ == "__main__":
    main()
