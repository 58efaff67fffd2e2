"""A bounded raw-bytes fuzz run over real sockets against a running narrows.

Thousands of cases (fixed seed, so a failure is reproducible): the strictness corpus and
WebSocket sessions, each mutated byte-wise (flips, insertions, deletions, truncation,
duplication), sent on fresh TCP connections to an in-process server. Every answer must be
well-formed (HTTP responses that parse; after a 101, server frames that parse, unmasked,
and a close frame with a valid code), the server must log no error, it must still serve a
plain request afterwards, and once the clients are gone its connection and task counts must
return to zero.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
from typing import Any

import httptools
import pytest

from bench.strictness import load_corpus
from narrows.server.websocket.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    close_payload,
    is_valid_close_code,
    serialize_masked,
)
from tests.server.http.serving import port_of, serving

SEED = int(os.environ.get("NARROWS_FUZZ_SEED", "20261122"))
HTTP_CASES = 2000
WS_CASES = 1000
IDLE = 0.3


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        while True:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                await send({**message, "type": "websocket.send"})
            except OSError:  # ASGI 2.4: sending on a closed WebSocket raises an OSError
                return


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(0, 4)):
        choice = rng.random()
        at = rng.randrange(len(out) + 1)
        if choice < 0.3 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif choice < 0.5:
            out[at:at] = bytes([rng.choice(b"\r\n\t \x00:;,\x7f\xff0123456789abcdef")])
        elif choice < 0.7 and out:
            del out[min(at, len(out) - 1)]
        elif choice < 0.85:
            out = out[:at]
        else:
            out += out[at : at + rng.randint(1, 64)]
    return bytes(out)


HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + base64.b64encode(b"0123456789abcdef") + b"\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


def ws_session(rng: random.Random) -> bytes:
    frames = []
    for _ in range(rng.randint(1, 6)):
        kind = rng.random()
        mask = rng.randbytes(4)
        if kind < 0.4:
            frames.append(serialize_masked(OP_TEXT, "héllo".encode() * rng.randint(0, 40), mask))
        elif kind < 0.6:
            frames.append(serialize_masked(OP_BINARY, rng.randbytes(rng.randint(0, 300)), mask))
        elif kind < 0.75:
            frames.append(serialize_masked(OP_PING, rng.randbytes(rng.randint(0, 125)), mask))
        elif kind < 0.85:
            frames.append(serialize_masked(OP_CLOSE, close_payload(1000, "bye"), mask))
        else:
            frames.append(rng.randbytes(rng.randint(1, 20)))
    return mutate(rng, b"".join(frames))


def check_http(data: bytes) -> None:
    class Sink:
        pass

    parser = httptools.HttpResponseParser(Sink())
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        pass


def check_ws(data: bytes) -> None:
    head, sep, frames = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        check_http(data)  # the handshake itself was refused: an HTTP error response
        return
    assert sep
    pos = 0
    while pos + 2 <= len(frames):
        first, second = frames[pos], frames[pos + 1]
        assert not first & 0x70, "reserved bits set in a server frame"
        assert not second & 0x80, "a masked server frame"
        length, pos = second & 0x7F, pos + 2
        if length == 126:
            length, pos = int.from_bytes(frames[pos : pos + 2], "big"), pos + 2
        elif length == 127:
            length, pos = int.from_bytes(frames[pos : pos + 8], "big"), pos + 8
        payload = frames[pos : pos + length]
        pos += length
        if first & 0x0F == OP_CLOSE and len(payload) >= 2:
            code = int.from_bytes(payload[:2], "big")
            assert is_valid_close_code(code), code


async def exchange(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = bytearray()
    try:
        writer.write(payload)
        await writer.drain()
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), IDLE)
            if not chunk:
                break
            received += chunk
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()
    return bytes(received)


async def test_raw_bytes_fuzz_over_sockets(caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(SEED)
    seeds = [c.request for c in load_corpus() if len(c.request) < 8192 and c.trickle is None]
    cases: list[tuple[str, bytes]] = []
    for _ in range(HTTP_CASES):
        cases.append(("http", mutate(rng, rng.choice(seeds))))
    for _ in range(WS_CASES):
        cases.append(("ws", HANDSHAKE + ws_session(rng)))
    caplog.set_level(logging.WARNING)
    async with serving(app) as server:
        port = port_of(server)
        limit = asyncio.Semaphore(100)
        failures: list[str] = []

        async def one(kind: str, payload: bytes) -> None:
            async with limit:
                answer = await exchange(port, payload)
            try:
                (check_http if kind == "http" else check_ws)(answer)
            except (AssertionError, httptools.HttpParserError) as exc:
                failures.append(f"{kind} {payload[:120]!r} -> {answer[:200]!r}: {exc}")

        await asyncio.gather(*(one(kind, payload) for kind, payload in cases))
        assert failures == []
        assert b"200 OK" in await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        state = server.state
        assert state is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while (state.connections or state.tasks) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        assert (len(state.connections), len(state.tasks)) == (0, 0)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
