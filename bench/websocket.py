"""WebSocket echo: messages/s, narrows against its peers in one run, interleaved rounds.

Default: the raw ASGI echo (``bench.apps:echo``) on narrows, uvicorn (websockets
implementation, httptools, uvloop), granian and daphne, one worker each.

``--consumer``: the same ``AsyncWebsocketConsumer`` echo (``bench/channels_echo``) as a
Channels 4.x app on daphne and on uvicorn, against the narrows framework's consumer on the
narrows server.

Load: ``bench._wsclient`` in its own process (picows): 32 connections, each ping-ponging a
16-byte text message for N seconds; every echo is checked. Prints messages/s per round,
medians and narrows/peer ratios.

    .bench-venv/bin/python -m bench.websocket [--consumer] [--rounds 3] [--duration 5]
"""

from __future__ import annotations

import os
import sys

if not __package__:  # run as a file: put the repository root first on sys.path
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import json
import subprocess

from bench import _common
from bench._common import (
    CHANNELS_ECHO_APP,
    ECHO_APP,
    HOST,
    NARROWS_ECHO_APP,
    ROOT,
    MeasureError,
    Measurement,
    ServerProcess,
    ServerSpec,
)

RAW_SERVERS = ["narrows", "uvicorn", "granian", "daphne", "hypercorn", "ceiling"]
RAW_DEFAULT = "narrows,uvicorn,granian,daphne,ceiling"
RAW_TARGETS = {"uvicorn": (">=", 1.5)}

NARROWS_CONSUMER = "narrows (narrows consumer)"
CONSUMER_SERVERS = {
    "narrows": (NARROWS_CONSUMER, "narrows", NARROWS_ECHO_APP, ("narrows.generic.websocket",)),
    "uvicorn": ("uvicorn (Channels consumer)", "uvicorn", CHANNELS_ECHO_APP, ("channels",)),
    "daphne": ("daphne (Channels consumer)", "daphne", CHANNELS_ECHO_APP, ("channels",)),
    # Not in the default set: they separate the server's share from the framework's.
    "narrows-channels": (
        "narrows (Channels consumer)", "narrows", CHANNELS_ECHO_APP, ("channels",)
    ),
    "uvicorn-narrows": (
        "uvicorn (narrows consumer)", "uvicorn", NARROWS_ECHO_APP, ("narrows.generic.websocket",)
    ),
}  # fmt: skip
CONSUMER_DEFAULT = "narrows,uvicorn,daphne"
CONSUMER_TARGETS = {
    "daphne (Channels consumer)": (">=", 4.0),
    "uvicorn (Channels consumer)": (">=", 2.0),
}


def run_client(
    server: ServerProcess, path: str, conns: int, duration: float, warmup: float
) -> Measurement:
    """Messages/s from one run of the load client against ``server``."""
    command = [
        sys.executable, "-m", "bench._wsclient", "echo", f"ws://{HOST}:{server.port}{path}",
        "--conns", str(conns), "--duration", str(duration), "--warmup", str(warmup),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=duration + warmup + 60
        )
    except subprocess.TimeoutExpired:
        raise MeasureError("the load client did not finish in time") from None
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-2:])
        raise MeasureError(f"load client failed (exit {done.returncode}): {tail[-300:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise MeasureError(f"{result['errors']} client errors, first: {result['first_error']}")
    if result["messages"] == 0:
        raise MeasureError("no echo received")
    if not server.alive:
        raise MeasureError("the server exited during the run")
    return Measurement(float(result["rate"]), int(result["total"]), result["client_cpu_us"])


def specs(consumer: bool, names: list[str]) -> list[ServerSpec]:
    if not consumer:
        ceiling = _common.CEILING_WS
        return [_common.spec(ceiling if n == "ceiling" else n, ECHO_APP) for n in names]
    chosen = []
    for key in names:
        label, server, app, extra = CONSUMER_SERVERS[key]
        chosen.append(_common.spec(server, app, name=label, extra=extra))
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consumer", action="store_true", help="Channels consumer echo mode")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per client run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before counting")
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument(
        "--servers",
        help=f"default {RAW_DEFAULT} ('ceiling': a bare picows echo server, not ASGI); "
        f"--consumer: default {CONSUMER_DEFAULT}, also narrows-channels, uvicorn-narrows",
    )
    _common.add_common_arguments(parser)
    args = parser.parse_args(argv)
    known = list(CONSUMER_SERVERS) if args.consumer else RAW_SERVERS
    names = _common.parse_servers(
        args.servers or (CONSUMER_DEFAULT if args.consumer else RAW_DEFAULT), known
    )
    path = "/ws/echo/" if args.consumer else "/"
    title = "Channels AsyncWebsocketConsumer echo" if args.consumer else "raw ASGI WebSocket echo"
    _common.install_cleanup()
    _common.exclusive(args)
    _common.header(
        f"{title}: messages/s",
        [f"method    {args.conns} connections ping-pong 16-byte text, {args.duration:g}s per run "
         f"after {args.warmup:g}s warm-up, {args.rounds} interleaved rounds, 1 worker each, "
         f"client in its own process"],
    )  # fmt: skip
    servers = _common.start_servers(specs(args.consumer, names))
    if args.consumer:
        reference, targets = NARROWS_CONSUMER, CONSUMER_TARGETS
    else:
        reference, targets = "narrows", RAW_TARGETS
    try:
        for server in servers:
            if server.alive:
                try:  # a short run first: warms the server and proves the echo works
                    run_client(server, path, args.conns, max(0.2, args.warmup), 0.0)
                except MeasureError as exc:
                    server.fail(f"warm-up failed: {exc}")
        print(f"client    {_client_name()}")
        results, cpu = _common.interleaved_rounds(
            servers,
            args.rounds,
            lambda s: run_client(s, path, args.conns, args.duration, args.warmup),
        )
        _common.report(
            servers, cpu, unit="server CPU time per echoed message in microseconds",
            higher_is_better=False, reference=reference, decimals=1, footer=False,
        )  # fmt: skip
        _common.report(
            servers,
            results,
            unit="messages/s",
            higher_is_better=True,
            targets=targets,
            reference=reference,
        )
    finally:
        _common.stop_all()
    return 0


def _client_name() -> str:
    from bench._wsclient import client_name

    return client_name()


if __name__ == "__main__":
    sys.exit(main())
