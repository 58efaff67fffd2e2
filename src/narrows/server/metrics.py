"""What ``--metrics-bind`` counts in a server process: an ASGI wrapper and plain tallies.

``Recorder.wrap(app)`` is put around the application at the server boundary, so the
protocols carry no metrics code beyond one hook (requests refused by
``--limit-concurrency``). Without ``--metrics-bind`` there is no wrapper and no recorder:
nothing is counted and nothing costs.

On the request path the wrapper only adds to plain ints and lists (the duration histogram's
buckets too: observing a prometheus_client histogram takes a lock per bucket update and
costs more than the rest of the wrapper); once a second a loop timer moves the tallies
into the prometheus_client metrics
(``narrows.server.metrics_export``), samples the in-flight and open-WebSocket gauges, and
reads the channel layers' own counters. With ``--workers`` those metrics live in
prometheus_client's multiprocess files, which the supervisor's listener adds up.
"""

from __future__ import annotations

import asyncio
import sys
import time
import weakref
from bisect import bisect_left
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from narrows.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from narrows.server.metrics_export import Instruments

__all__ = ["FLUSH_INTERVAL", "Recorder", "status_class"]

#: Seconds between moving the tallies into the exported metrics.
FLUSH_INTERVAL = 1.0
#: Methods counted under their own name; any other token a client sends is "other", so a
#: client cannot grow the number of label values without bound.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)


_STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}


def status_class(status: int) -> str:
    """``"2xx"`` for 204; a response that never started (the server answered 500) is 5xx."""
    return _STATUS_CLASSES.get(status // 100, "5xx")


class Recorder:
    """Tallies of one server process, flushed into ``instruments`` once a second."""

    def __init__(self, instruments: Instruments) -> None:
        self.instruments = instruments
        #: (method, status class) -> [requests, seconds, count per duration bucket...]
        self.requests: dict[tuple[str, str], list[float]] = {}
        self._bounds = instruments.duration_bounds()
        self.in_flight = 0
        self.refused = 0
        self.websockets_open = 0
        self.websocket_messages = {"in": 0, "out": 0}
        self.bytes = {("http", "in"): 0, ("http", "out"): 0, ("websocket", "in"): 0,
                      ("websocket", "out"): 0}  # fmt: skip
        self._layer_seen: weakref.WeakKeyDictionary[Any, dict[str, int]] = (
            weakref.WeakKeyDictionary()
        )
        self._timer: asyncio.TimerHandle | None = None

    def wrap(self, app: ASGIApp) -> ASGIApp:
        return _Instrumented(app, self)

    # -- the request path ---------------------------------------------------------------

    async def http(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        if self._timer is None:
            self._start()
        method = scope["method"]
        if method not in KNOWN_METHODS:
            method = "other"
        status = 0
        bytes_in = bytes_out = 0

        async def counting_receive() -> Message:
            nonlocal bytes_in
            message = await receive()
            if message["type"] == "http.request":
                bytes_in += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status, bytes_out
            kind = message["type"]
            if kind == "http.response.body":
                bytes_out += len(message.get("body", b""))
            elif kind == "http.response.start":
                status = message["status"]
            await send(message)

        self.in_flight += 1
        started = time.perf_counter()
        try:
            await app(scope, counting_receive, counting_send)
        finally:
            elapsed = time.perf_counter() - started
            self.in_flight -= 1
            key = (method, _STATUS_CLASSES.get(status // 100, "5xx"))
            tally = self.requests.get(key)
            if tally is None:
                tally = self.requests[key] = [0, 0.0] + [0] * len(self._bounds)
            tally[0] += 1
            tally[1] += elapsed
            tally[2 + bisect_left(self._bounds, elapsed)] += 1
            if bytes_in:
                self.bytes["http", "in"] += bytes_in
            self.bytes["http", "out"] += bytes_out

    async def websocket(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        if self._timer is None:
            self._start()
        accepted = False
        tally = self.websocket_messages
        sizes = self.bytes

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive":
                tally["in"] += 1
                sizes["websocket", "in"] += _payload_size(message)
            return message

        async def counting_send(message: Message) -> None:
            nonlocal accepted
            kind = message["type"]
            if kind == "websocket.send":
                tally["out"] += 1
                sizes["websocket", "out"] += _payload_size(message)
            elif kind == "websocket.accept" and not accepted:
                accepted = True
                self.websockets_open += 1
            await send(message)

        try:
            await app(scope, counting_receive, counting_send)
        finally:
            if accepted:
                self.websockets_open -= 1

    # -- once a second ---------------------------------------------------------------------

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(FLUSH_INTERVAL, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.flush()
        self._timer = loop.call_later(FLUSH_INTERVAL, self._tick, loop)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.flush()

    def flush(self) -> None:
        """Move the tallies into the exported metrics (and sample the gauges)."""
        out = self.instruments
        for (method, cls), tally in self.requests.items():
            if tally[0]:
                out.requests.labels(method, cls).inc(tally[0])
                out.add_durations(method, cls, tally[1], tally[2:])
                tally[:] = [0] * len(tally)
        if self.refused:
            out.refused.inc(self.refused)
            self.refused = 0
        for direction, count in self.websocket_messages.items():
            if count:
                out.websocket_messages.labels(direction).inc(count)
                self.websocket_messages[direction] = 0
        for (protocol, direction), count in self.bytes.items():
            if count:
                out.bytes.labels(protocol, direction).inc(count)
                self.bytes[protocol, direction] = 0
        out.in_flight.set(self.in_flight)
        out.websockets_open.set(self.websockets_open)
        self._flush_layers()

    def _flush_layers(self) -> None:
        # The channel layers count on their own objects; they are read only if the
        # application imported them (the server never imports the framework side).
        base = sys.modules.get("narrows.layers.base")
        if base is None:
            return
        out = self.instruments
        for layer in base.live_layers():
            name = type(layer).__name__
            seen = self._layer_seen.setdefault(layer, {})
            now = {"sent": layer.messages_sent, "received": layer.messages_received}
            now.update({f"dropped:{r}": n for r, n in layer.dropped.items()})
            for key, value in now.items():
                delta = value - seen.get(key, 0)
                if delta <= 0:
                    continue
                if key.startswith("dropped:"):
                    out.layer_dropped.labels(name, key.split(":", 1)[1]).inc(delta)
                else:
                    out.layer_messages.labels(name, key).inc(delta)
                seen[key] = value


class _Instrumented:
    """The application as the server calls it under ``--metrics-bind``."""

    __slots__ = ("app", "http", "websocket")

    def __init__(self, app: ASGIApp, recorder: Recorder) -> None:
        self.app = app
        self.http = recorder.http
        self.websocket = recorder.websocket

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine itself: the recorder's coroutine is the only frame added.
        kind = scope["type"]
        if kind == "http":
            return self.http(self.app, scope, receive, send)
        if kind == "websocket":
            return self.websocket(self.app, scope, receive, send)
        return self.app(scope, receive, send)


def _payload_size(message: Message) -> int:
    data = message.get("bytes")
    if data is not None:
        return len(data)
    text = message.get("text")
    return len(text.encode()) if text is not None else 0
