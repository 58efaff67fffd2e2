"""Model-based stateful test of the sans-I/O WebSocket connection (RFC 6455, server side).

A hypothesis ``RuleBasedStateMachine`` plays the client: whole or fragmented messages with
pings between fragments, pings, server sends, a server-initiated close, the client's close,
and the protocol errors a hostile client can make (unmasked frames, invalid UTF-8, reserved
bits, unknown opcodes, oversized frames announced by their header alone). Every step's bytes
reach the connection cut into random reads; the replies are taken after every read (a
client that reads) or only at the end (one that does not: owed pongs coalesce into one
answering the latest ping). The model predicts each event and each reply;
invariants: the state is always one the model expects, a protocol error yields exactly one
close frame carrying the right code (1002/1007/1009) and then CLOSED, nothing is ever
buffered past one frame header plus ``max_frame_size``, and nothing is accepted after CLOSED.
"""

from __future__ import annotations

import os

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from narrows.server.websocket.connection import Closed, Connection, ConnectionState, Pong
from narrows.server.websocket.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    close_payload,
    serialize_masked,
)

MAX_FRAME = 256
MAX_MESSAGE = 1024
MAX_FRAGMENTS = 8

texts = st.text(max_size=80)
blobs = st.binary(max_size=200)
cuts = st.lists(st.integers(1, 40), max_size=6)


def masked(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    return serialize_masked(opcode, payload, os.urandom(4), fin=fin, rsv1=rsv1)


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    parts, pos = [], 0
    for size in sizes:
        if pos >= len(data):
            break
        parts.append(data[pos : pos + size])
        pos += size
    if pos < len(data):
        parts.append(data[pos:])
    return parts


def parse_server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Unmasked frames the server wrote: ``(opcode, payload)``."""
    frames, pos = [], 0
    while pos < len(data):
        first, second = data[pos], data[pos + 1]
        assert not second & 0x80, "a server frame must not be masked"
        length, pos = second & 0x7F, pos + 2
        if length == 126:
            length, pos = int.from_bytes(data[pos : pos + 2], "big"), pos + 2
        elif length == 127:
            length, pos = int.from_bytes(data[pos : pos + 8], "big"), pos + 8
        frames.append((first & 0x0F, data[pos : pos + length]))
        pos += length
    return frames


class WebSocketMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.conn = Connection(
            max_message_size=MAX_MESSAGE, max_frame_size=MAX_FRAME, max_fragments=MAX_FRAGMENTS
        )
        self.conn.accept()
        self.state = ConnectionState.OPEN  # the model's
        self.close_code: int | None = None

    # -- feeding -------------------------------------------------------------------------

    def feed(
        self, data: bytes, sizes: list[int], *, drain_each: bool = True
    ) -> tuple[list[object], list[tuple[int, bytes]]]:
        events: list[object] = []
        written = b""
        for part in split(data, sizes):
            events.extend(self.conn.receive_data(part))
            assert self.conn.pending_bytes <= MAX_FRAME + 14
            if drain_each:
                written += self.conn.data_to_send()
        written += self.conn.data_to_send()
        assert self.conn.outgoing == []
        return events, parse_server_frames(written)

    def expect_error(self, data: bytes, sizes: list[int], code: int) -> None:
        events, out = self.feed(data, sizes)
        closes = [e for e in events if isinstance(e, Closed)]
        assert len(closes) == 1 and closes[0].error and closes[0].code == code, events
        if self.state is ConnectionState.OPEN:
            assert [op for op, _ in out] == [OP_CLOSE]
            assert int.from_bytes(out[0][1][:2], "big") == code
        else:  # CLOSING: our close frame is already out, nothing more is sent
            assert out == []
        self.state = ConnectionState.CLOSED

    # -- a well-behaved client ------------------------------------------------------------

    @precondition(lambda self: self.state is ConnectionState.OPEN)
    @rule(text=texts, parts=st.integers(1, 4), pings=st.booleans(), sizes=cuts, reads=st.booleans())
    def text_message(
        self, text: str, parts: int, pings: bool, sizes: list[int], reads: bool
    ) -> None:
        payload = text.encode()
        step = max(1, -(-len(payload) // parts))
        pieces = [payload[i : i + step] for i in range(0, len(payload), step)] or [b""]
        data = b""
        for index, piece in enumerate(pieces):
            opcode = OP_TEXT if index == 0 else OP_CONTINUATION
            data += masked(opcode, piece, fin=index == len(pieces) - 1)
            if pings and index < len(pieces) - 1:
                data += masked(OP_PING, b"p%d" % index)
        events, out = self.feed(data, sizes, drain_each=reads)
        assert events == [text]
        sent = [b"p%d" % i for i in range(len(pieces) - 1)] if pings else []
        assert {op for op, _ in out} <= {OP_PONG}
        answered = [payload for _, payload in out]
        if not sent:
            assert answered == []
        elif not reads:  # nothing taken until the end: one pong, for the latest ping
            assert answered == [sent[-1]]
        else:  # each read's pongs coalesce: an ordered selection ending with the latest
            assert answered[-1] == sent[-1]
            assert answered == [p for p in sent if p in answered]

    @precondition(lambda self: self.state is ConnectionState.OPEN)
    @rule(blob=blobs, sizes=cuts)
    def binary_message(self, blob: bytes, sizes: list[int]) -> None:
        events, out = self.feed(masked(OP_BINARY, blob), sizes)
        assert events == [blob] and out == []

    @precondition(lambda self: self.state is not ConnectionState.CLOSED)
    @rule(payload=st.binary(max_size=125), sizes=cuts)
    def ping(self, payload: bytes, sizes: list[int]) -> None:
        events, out = self.feed(masked(OP_PING, payload), sizes)
        assert events == []
        # While CLOSING no more frames follow our close frame: the ping goes unanswered.
        assert out == ([(OP_PONG, payload)] if self.state is ConnectionState.OPEN else [])

    @precondition(lambda self: self.state is not ConnectionState.CLOSED)
    @rule(payloads=st.lists(st.binary(max_size=125), min_size=2, max_size=30), sizes=cuts)
    def ping_flood_from_a_client_that_does_not_read(
        self, payloads: list[bytes], sizes: list[int]
    ) -> None:
        data = b"".join(masked(OP_PING, payload) for payload in payloads)
        events, out = self.feed(data, sizes, drain_each=False)
        assert events == []
        assert out == ([(OP_PONG, payloads[-1])] if self.state is ConnectionState.OPEN else [])

    @precondition(lambda self: self.state is not ConnectionState.CLOSED)
    @rule(payload=st.binary(max_size=125))
    def pong(self, payload: bytes) -> None:
        events, _ = self.feed(masked(OP_PONG, payload), [])
        assert len(events) == 1 and isinstance(events[0], Pong)
        assert events[0].payload == payload

    @precondition(lambda self: self.state is ConnectionState.CLOSING)
    @rule(text=texts)
    def message_while_closing_is_dropped(self, text: str) -> None:
        events, out = self.feed(masked(OP_TEXT, text.encode()), [])
        assert events == [] and out == []

    # -- the server's side ----------------------------------------------------------------

    @precondition(lambda self: self.state is ConnectionState.OPEN)
    @rule(text=texts)
    def server_sends(self, text: str) -> None:
        frame = self.conn.send_text(text)
        assert parse_server_frames(frame) == [(OP_TEXT, text.encode())]

    @precondition(lambda self: self.state is ConnectionState.OPEN)
    @rule(code=st.sampled_from([1000, 1001, 1011, 1012, 4000]), reason=st.text(max_size=200))
    def server_closes(self, code: int, reason: str) -> None:
        frames = parse_server_frames(self.conn.close(code, reason))
        assert frames[0][0] == OP_CLOSE and len(frames[0][1]) <= 125
        assert int.from_bytes(frames[0][1][:2], "big") == code
        self.state = ConnectionState.CLOSING

    @precondition(lambda self: self.state is not ConnectionState.CLOSED)
    @rule(code=st.sampled_from([1000, 1001, 3000, 4999]), reason=st.text(max_size=20))
    def client_closes(self, code: int, reason: str) -> None:
        events, out = self.feed(masked(OP_CLOSE, close_payload(code, reason)), [])
        assert len(events) == 1 and isinstance(events[0], Closed) and not events[0].error
        assert (events[0].code, events[0].reason) == (code, reason)
        expected_echo = [(OP_CLOSE, code.to_bytes(2, "big"))]
        assert out == (expected_echo if self.state is ConnectionState.OPEN else [])
        self.state = ConnectionState.CLOSED

    # -- a hostile client -----------------------------------------------------------------

    @precondition(lambda self: self.state is not ConnectionState.CLOSED)
    @rule(payload=st.binary(max_size=20), sizes=cuts)
    def unmasked_frame(self, payload: bytes, sizes: list[int]) -> None:
        self.expect_error(bytes((0x82, len(payload))) + payload, sizes, 1002)

    @precondition(lambda self: self.state is ConnectionState.OPEN)
    @rule(bad=st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"abc\xe2\x82"]))
    def invalid_utf8(self, bad: bytes) -> None:
        self.expect_error(masked(OP_TEXT, bad), [], 1007)

    @precondition(lambda self: self.state is not ConnectionState.CLOSED)
    @rule(opcode=st.sampled_from([0x3, 0x7, 0xB, 0xF]))
    def unknown_opcode(self, opcode: int) -> None:
        self.expect_error(masked(opcode, b""), [], 1002)

    @precondition(lambda self: self.state is not ConnectionState.CLOSED)
    @rule(rsv=st.sampled_from([0x40, 0x20, 0x10]))
    def reserved_bits(self, rsv: int) -> None:
        frame = bytearray(masked(OP_BINARY, b"x"))
        frame[0] |= rsv
        self.expect_error(bytes(frame), [], 1002)

    @precondition(lambda self: self.state is not ConnectionState.CLOSED)
    @rule(extra=st.integers(1, 2**40))
    def oversized_frame_header_alone(self, extra: int) -> None:
        length = MAX_FRAME + extra
        head = bytes((0x82, 0x80 | 127)) + length.to_bytes(8, "big") + os.urandom(4)
        self.expect_error(head, [], 1009)  # refused on its header: nothing buffered

    @precondition(lambda self: self.state is ConnectionState.OPEN)
    @rule(frames=st.integers(5, 8))
    def fragmented_message_too_large(self, frames: int) -> None:
        data = b"".join(
            masked(OP_BINARY if i == 0 else OP_CONTINUATION, b"x" * MAX_FRAME, fin=False)
            for i in range(frames)
        )
        self.expect_error(data, [], 1009)

    @precondition(lambda self: self.state is ConnectionState.OPEN)
    @rule(count=st.integers(MAX_FRAGMENTS, 3 * MAX_FRAGMENTS), sizes=cuts)
    def too_many_fragments(self, count: int, sizes: list[int]) -> None:
        # Empty continuation frames: no bytes count towards the size limit, only the count.
        data = masked(OP_TEXT, b"", fin=False) + masked(OP_CONTINUATION, b"", fin=False) * count
        self.expect_error(data, sizes, 1009)

    @precondition(lambda self: self.state is not ConnectionState.CLOSED)
    @rule()
    def continuation_without_start(self) -> None:
        self.expect_error(masked(OP_CONTINUATION, b"x"), [], 1002)

    @precondition(lambda self: self.state is not ConnectionState.CLOSED)
    @rule(code=st.sampled_from([0, 999, 1004, 1005, 1006, 1015, 2999, 5000]))
    def invalid_close_code(self, code: int) -> None:
        self.expect_error(masked(OP_CLOSE, code.to_bytes(2, "big")), [], 1002)

    @precondition(lambda self: self.state is ConnectionState.CLOSED)
    @rule(data=st.binary(min_size=1, max_size=50))
    def nothing_after_closed(self, data: bytes) -> None:
        assert self.conn.receive_data(data) == []
        assert self.conn.outgoing == []

    @invariant()
    def state_matches_model(self) -> None:
        assert self.conn.state is self.state


WebSocketMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=25, deadline=None
)
test_websocket_connection_model = WebSocketMachine.TestCase
