"""Property tests of the HTTP/1.1 connection (``HTTPProtocol`` over a fake transport).

Requests are built from parts known to stress parsers (Transfer-Encoding and Content-Length
variants, odd Host values, control characters, chunk framing), then mutated byte-wise and
cut into random reads. Whatever arrives, the connection must end in valid responses: every
byte it wrote parses as HTTP/1.1 responses, an error status (4xx/5xx) is the last response
and is followed by the close, the application never sees an exception, no task or
connection is left behind, and a request head that never ends is refused once it passes
the configured limits instead of being buffered.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httptools
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from narrows.server.config import Config
from tests.server.http.fakes import Connection, parse_responses

ERROR_STATUSES = {400, 408, 413, 414, 417, 431, 500, 501, 505}
ALLOWED = {100, 200} | ERROR_STATUSES

METHODS = [b"GET", b"POST", b"PUT", b"OPTIONS", b"CONNECT", b"get", b"G\x00T", b"PRI"]
TARGETS = [b"/", b"/a?b=c", b"*", b"http://x/y", b"/a#b", b"/%00", b"/\xff", b"a", b""]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2", b"http/1.1", b"", b"HTTP/1.1 "]
HEADERS = [
    b"Host: x",
    b"Host: a b",
    b"Host: [::1]:80",
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: chunked, identity",
    b"Transfer-Encoding:\tchunked",
    b"Transfer-Encoding : chunked",
    b" Transfer-Encoding: chunked",
    b"Transfer-Encoding: xchunked",
    b"Content-Length: 5",
    b"Content-Length: -1",
    b"Content-Length: 5, 5",
    b"Content-Length: 99999999999999999999",
    b"Expect: 100-continue",
    b"Connection: close",
    b"Connection: keep-alive",
    b"Upgrade: h2c",
    b"X-A: \x00",
    b"X-A: a\rb",
    b"X-A:\r\n b",
]
BODIES = [b"", b"hello", b"5\r\nhello\r\n0\r\n\r\n", b"5;e=1\r\nhello\r\n0\r\n\r\n", b"0\r\n\r\n"]
BODIES += [b"FFFFFFFFFFFFFFFFF\r\n", b"5\nhello\n0\n\n", b"3\r\nhello\r\n0\r\n\r\n"]


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    line = b" ".join(
        [
            draw(st.sampled_from(METHODS)),
            draw(st.sampled_from(TARGETS)),
            draw(st.sampled_from(VERSIONS)),
        ]
    )
    headers = draw(st.lists(st.sampled_from(HEADERS), max_size=5))
    eol = draw(st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"]))
    head = eol.join([line, *headers]) + eol + eol
    return head + draw(st.sampled_from(BODIES))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(draw(st.lists(requests(), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "insert", "delete"]))
        byte = draw(st.integers(0, 255))
        if kind == "flip":
            data[at] = byte
        elif kind == "insert":
            data.insert(at, byte)
        else:
            del data[at]
    return bytes(data)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(edges)]


class Recorder:
    """An app that reads the whole body and answers 200; records any exception it sees."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect" or not message.get("more_body"):
                    break
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        except BaseException as exc:  # the server must never raise into the app
            if not isinstance(exc, asyncio.CancelledError):
                self.errors.append(exc)
            raise


def parse_all(data: bytes) -> list[int]:
    """Statuses of the responses in ``data``; fails if any byte is not a valid response."""
    statuses: list[int] = []

    class Sink:
        def on_headers_complete(self) -> None:
            statuses.append(parser.get_status_code())

    parser = httptools.HttpResponseParser(Sink())
    parser.feed_data(data)  # raises on anything that is not a response
    return statuses


async def exercise(chunks: list[bytes]) -> tuple[list[int], bool, Connection, Recorder]:
    app = Recorder()
    loop_errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    conn = Connection(app, Config(lifespan="off", max_header_size=2048, max_request_line=512))
    for chunk in chunks:
        if conn.transport.closed:
            break
        conn.send(chunk)
        await conn.settle(5)
    await conn.settle(30)
    statuses = parse_all(bytes(conn.transport.data))
    closed = conn.transport.closed
    if not closed:
        conn.transport.close()  # the client leaves: everything must wind down
    await conn.settle(30)
    assert loop_errors == []
    return statuses, closed, conn, app


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated(), points=st.lists(st.integers(0, 10_000), max_size=6))
def test_any_request_bytes_end_in_valid_responses(data: bytes, points: list[int]) -> None:
    statuses, closed, conn, app = asyncio.run(exercise(cut(data, points)))
    assert app.errors == []
    assert set(statuses) <= ALLOWED, statuses
    errors = [i for i, s in enumerate(statuses) if s in ERROR_STATUSES]
    if errors:
        assert errors == [len(statuses) - 1], statuses  # an error ends the connection
        assert closed
    assert not conn.state.tasks
    assert not conn.state.connections


@settings(max_examples=60, deadline=None)
@given(
    unit=st.sampled_from([b"a", b"X-A: b\r\n", b"\t", b"%"]),
    prefix=st.sampled_from(
        [b"GET /", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ", b"GET / HTTP/1.1\r\n"]
    ),
)
def test_a_head_that_never_ends_is_refused_not_buffered(unit: bytes, prefix: bytes) -> None:
    async def scenario() -> tuple[list[int], bool]:
        conn = Connection(
            Recorder(), Config(lifespan="off", max_header_size=2048, max_request_line=512)
        )
        conn.send(prefix)
        sent = len(prefix)
        limit = 2048 + 512 + 2 * 1024  # limits plus one read's worth of slack
        while not conn.transport.closed and sent < 4 * limit:
            conn.send(unit * 256)
            sent += len(unit) * 256
            await conn.settle(2)
        await conn.settle(10)
        assert sent <= limit + len(unit) * 256, f"still reading after {sent} bytes"
        return parse_all(bytes(conn.transport.data)), conn.transport.closed

    statuses, closed = asyncio.run(scenario())
    assert closed
    assert statuses in ([414], [431], [400])


def test_unread_body_pauses_reading_instead_of_buffering() -> None:
    async def scenario() -> None:
        release = asyncio.Event()

        async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await release.wait()
            while (await receive()).get("more_body"):
                pass
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        config = Config(lifespan="off", request_body_buffer=16 * 1024)
        conn = Connection(slow, config)
        conn.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        for _ in range(64):
            if conn.transport.reading:
                conn.send(b"x" * 4096)
            await conn.settle(2)
        assert not conn.transport.reading  # the kernel buffer holds the rest, not narrows
        cycle = conn.protocol._cycle
        assert cycle is not None
        assert sum(map(len, cycle._body)) <= 16 * 1024 + 4096
        release.set()
        await conn.settle(10)
        assert conn.transport.reading  # reading resumes as the app consumes
        conn.transport.close()
        await conn.settle(20)

    asyncio.run(scenario())


# -- a keep-alive connection as a state machine ---------------------------------------------


async def routed(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/ok`` 200 after reading the body; ``/stream`` a 3-part chunked body; ``/fail`` raises
    after reading the body; ``/echo`` answers with the body length."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if message["type"] == "http.disconnect" or not message.get("more_body"):
            break
    path = scope["path"]
    if path == "/fail":
        raise RuntimeError("the app failed")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    if path == "/stream":
        for part in (b"a", b"b"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": str(size).encode()})


class KeepAliveMachine(RuleBasedStateMachine):
    """Requests, pipelined batches, failing apps and bad requests on one connection; the
    model predicts every response, its body and when the connection closes."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.conn: Connection = self.loop.run_until_complete(self._open())
        self.expected: list[tuple[int, bytes | None]] = []
        self.closed = False

    async def _open(self) -> Connection:
        return Connection(routed, Config(lifespan="off"))

    def settle(self) -> None:
        self.loop.run_until_complete(self.conn.settle(40))

    def feed(self, *pieces: bytes) -> None:
        """Deliver reads from inside the loop, as asyncio does, then let the app run."""

        async def deliver() -> None:
            for piece in pieces:
                if not self.conn.transport.closed:
                    self.conn.send(piece)
                await self.conn.settle(2)
            await self.conn.settle(40)

        self.loop.run_until_complete(deliver())

    @staticmethod
    def build(path: str, body: bytes, chunked: bool) -> bytes:
        if chunked:
            framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:3], body[3:]) if p)
            head = b"Transfer-Encoding: chunked\r\n"
            return b"POST %s HTTP/1.1\r\nHost: x\r\n%s\r\n%s0\r\n\r\n" % (
                path.encode(),
                head,
                framed,
            )
        return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
            path.encode(),
            len(body),
            body,
        )

    def expect(self, path: str, body: bytes) -> None:
        if path == "/fail":
            self.expected.append((500, None))
            self.closed = True  # a failed app's response closes the connection
        else:
            answer = str(len(body)).encode()
            self.expected.append((200, b"ab" + answer if path == "/stream" else answer))

    @precondition(lambda self: not self.closed)
    @rule(
        path=st.sampled_from(["/ok", "/stream", "/echo", "/fail"]),
        body=st.binary(max_size=40),
        chunked=st.booleans(),
        cuts=st.lists(st.integers(1, 30), max_size=4),
    )
    def request(self, path: str, body: bytes, chunked: bool, cuts: list[int]) -> None:
        data = self.build(path, body, chunked)
        self.feed(*cut(data, [sum(cuts[: i + 1]) for i in range(len(cuts))]))
        self.expect(path, body)

    @precondition(lambda self: not self.closed)
    @rule(
        batch=st.lists(
            st.tuples(st.sampled_from(["/ok", "/stream"]), st.binary(max_size=10)),
            min_size=2,
            max_size=4,
        )
    )
    def pipelined(self, batch: list[tuple[str, bytes]]) -> None:
        self.feed(b"".join(self.build(path, body, False) for path, body in batch))
        for path, body in batch:
            self.expect(path, body)

    @precondition(lambda self: not self.closed)
    @rule(
        bad=st.sampled_from(
            [
                b"GET / HTTP/1.1\r\n\r\n",
                b"G T / HTTP/1.1\r\nHost: x\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n",
            ]
        )
    )
    def bad_request(self, bad: bytes) -> None:
        self.feed(bad)
        self.expected.append((400, None))
        self.closed = True

    @precondition(lambda self: self.closed)
    @rule()
    def nothing_more_after_the_close(self) -> None:
        before = bytes(self.conn.transport.data)
        self.settle()
        assert bytes(self.conn.transport.data) == before

    @invariant()
    def responses_match_the_model(self) -> None:
        responses = parse_responses(bytes(self.conn.transport.data))
        got = [
            (r.status, r.body if want is not None else None)
            for r, (_, want) in zip(responses, self.expected, strict=False)
        ]
        assert got == self.expected
        assert all(r.complete for r in responses)
        assert self.conn.transport.closed == self.closed

    def teardown(self) -> None:
        async def leave() -> None:
            if not self.conn.transport.closed:
                self.conn.transport.close()
            await self.conn.settle(40)

        self.loop.run_until_complete(leave())
        assert not self.conn.state.tasks and not self.conn.state.connections
        self.loop.close()


KeepAliveMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=12, deadline=None
)
test_keep_alive_connection_model = KeepAliveMachine.TestCase
