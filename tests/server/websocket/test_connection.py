"""The sans-I/O connection: every RFC 6455 rule, fed whole and byte by byte."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from narrows.server.websocket.connection import (
    Closed,
    Connection,
    ConnectionState,
    Event,
    InvalidState,
    Pong,
)
from narrows.server.websocket.deflate import DeflateParams, PerMessageDeflate
from narrows.server.websocket.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    serialize,
    serialize_masked,
)

MASK = b"\x37\xfa\x21\x3d"


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv1: bool = False) -> bytes:
    return serialize_masked(opcode, payload, MASK, fin=fin, rsv1=rsv1)


def unmasked(opcode: int, payload: bytes = b"") -> bytes:
    return serialize(opcode, payload)


def open_conn(**kw: object) -> Connection:
    conn = Connection(**kw)  # type: ignore[arg-type]
    conn.accept()
    return conn


def feed_whole(conn: Connection, data: bytes) -> list[Event]:
    return conn.receive_data(data)


def feed_bytewise(conn: Connection, data: bytes) -> list[Event]:
    events: list[Event] = []
    for i in range(len(data)):
        events.extend(conn.receive_data(data[i : i + 1]))
    return events


FEEDERS = [pytest.param(feed_whole, id="whole"), pytest.param(feed_bytewise, id="bytewise")]
Feeder = Callable[[Connection, bytes], list[Event]]


def close_code_sent(conn: Connection) -> int | None:
    """The code of the close frame the connection queued for the peer, if any."""
    for out in conn.outgoing:
        if out[0] == 0x80 | OP_CLOSE:
            return int.from_bytes(out[2:4], "big") if out[1] >= 2 else None
    return None


@pytest.mark.parametrize("feed", FEEDERS)
def test_text_binary_and_several_frames_in_one_chunk(feed: Feeder) -> None:
    conn = open_conn()
    data = frame(OP_TEXT, "héllo".encode()) + frame(OP_BINARY, b"\x00\x01") + frame(OP_TEXT)
    assert feed(conn, data) == ["héllo", b"\x00\x01", ""]


@pytest.mark.parametrize("feed", FEEDERS)
@pytest.mark.parametrize("size", [125, 126, 65535, 65536])
def test_length_encodings(feed: Feeder, size: int) -> None:
    conn = open_conn()
    assert feed(conn, frame(OP_BINARY, b"z" * size)) == [b"z" * size]


def test_64_bit_length_in_uneven_chunks() -> None:
    conn = open_conn()
    data = frame(OP_BINARY, b"z" * 200_000)
    events: list[Event] = []
    for i in range(0, len(data), 7919):
        events.extend(conn.receive_data(data[i : i + 7919]))
    assert events == [b"z" * 200_000]


@pytest.mark.parametrize("feed", FEEDERS)
def test_fragmented_message_with_control_frames_between(feed: Feeder) -> None:
    conn = open_conn()
    text = "€uro—dash".encode()
    data = (
        frame(OP_TEXT, text[:2], fin=False)  # splits the 3-byte € in the middle
        + frame(OP_PING, b"p1")
        + frame(OP_CONTINUATION, text[2:7], fin=False)
        + frame(OP_PONG, b"x")
        + frame(OP_CONTINUATION, text[7:], fin=True)
    )
    events = feed(conn, data)
    assert len(events) == 2
    assert isinstance(events[0], Pong) and events[0].payload == b"x"
    assert events[1] == "€uro—dash"
    assert conn.outgoing == [serialize(OP_PONG, b"p1")]


@pytest.mark.parametrize("feed", FEEDERS)
def test_fragmented_binary(feed: Feeder) -> None:
    conn = open_conn()
    data = frame(OP_BINARY, b"ab", fin=False) + frame(OP_CONTINUATION, b"cd")
    assert feed(conn, data) == [b"abcd"]


@pytest.mark.parametrize("feed", FEEDERS)
@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(unmasked(OP_TEXT, b"hi"), 1002, id="unmasked"),
        pytest.param(frame(OP_TEXT, b"hi")[:0] + bytes([0xA1, 0x80]) + MASK, 1002, id="rsv2"),
        pytest.param(bytes([0x91, 0x80]) + MASK, 1002, id="rsv3"),
        pytest.param(frame(OP_TEXT, b"hi", rsv1=True), 1002, id="rsv1-without-deflate"),
        pytest.param(frame(0x3, b""), 1002, id="reserved-data-opcode"),
        pytest.param(frame(0xB, b""), 1002, id="reserved-control-opcode"),
        pytest.param(frame(OP_PING, b"", fin=False), 1002, id="fragmented-ping"),
        pytest.param(frame(OP_PING, b"x" * 126), 1002, id="oversized-ping"),
        pytest.param(frame(OP_CLOSE, b"x" * 126), 1002, id="oversized-close"),
        pytest.param(frame(OP_CONTINUATION, b"x"), 1002, id="continuation-without-start"),
        pytest.param(
            frame(OP_TEXT, b"a", fin=False) + frame(OP_TEXT, b"b"), 1002, id="new-msg-in-fragmented"
        ),
        pytest.param(
            frame(OP_TEXT, b"a", fin=False) + frame(OP_BINARY, b"b"), 1002, id="binary-in-text"
        ),
        pytest.param(frame(OP_TEXT, b"\xff"), 1007, id="invalid-utf8"),
        pytest.param(frame(OP_TEXT, b"\xed\xa0\x80"), 1007, id="surrogate-utf8"),
        pytest.param(
            frame(OP_TEXT, b"\xce", fin=False) + frame(OP_CONTINUATION, b"\xff"),
            1007,
            id="invalid-utf8-across-fragments",
        ),
        pytest.param(
            frame(OP_TEXT, b"ok", fin=False) + frame(OP_CONTINUATION, b"\xce"),
            1007,
            id="truncated-utf8-at-end",
        ),
        pytest.param(frame(OP_CLOSE, b"\x03"), 1002, id="close-one-byte"),
        pytest.param(frame(OP_CLOSE, (999).to_bytes(2, "big")), 1002, id="close-code-999"),
        pytest.param(frame(OP_CLOSE, (1005).to_bytes(2, "big")), 1002, id="close-code-1005"),
        pytest.param(frame(OP_CLOSE, (1006).to_bytes(2, "big")), 1002, id="close-code-1006"),
        pytest.param(frame(OP_CLOSE, (2000).to_bytes(2, "big")), 1002, id="close-code-2000"),
        pytest.param(frame(OP_CLOSE, (5000).to_bytes(2, "big")), 1002, id="close-code-5000"),
        pytest.param(frame(OP_CLOSE, b"\x03\xe8\xff"), 1007, id="close-reason-invalid-utf8"),
        pytest.param(b"\x82\xff" + (1 << 63).to_bytes(8, "big") + MASK, 1002, id="63-bit-length"),
    ],
)
def test_protocol_errors_close_with_the_right_code(feed: Feeder, data: bytes, code: int) -> None:
    conn = open_conn()
    events = feed(conn, data + frame(OP_TEXT, b"after"))
    assert len(events) == 1
    closed = events[0]
    assert isinstance(closed, Closed)
    assert closed.error and closed.code == code
    assert conn.state is ConnectionState.CLOSED
    assert close_code_sent(conn) == code
    assert conn.receive_data(frame(OP_TEXT, b"more")) == []  # nothing after CLOSED


@pytest.mark.parametrize("feed", FEEDERS)
def test_frame_over_limit_is_1009_before_its_payload_arrives(feed: Feeder) -> None:
    conn = open_conn(max_frame_size=100, max_message_size=1000)
    header = frame(OP_BINARY, b"x" * 101)[:8]  # header + mask only
    events = feed(conn, header)
    assert isinstance(events[0], Closed) and events[0].code == 1009
    assert close_code_sent(conn) == 1009


@pytest.mark.parametrize("feed", FEEDERS)
def test_message_over_limit_across_fragments_is_1009(feed: Feeder) -> None:
    conn = open_conn(max_frame_size=100, max_message_size=150)
    data = frame(OP_TEXT, b"a" * 100, fin=False) + frame(OP_CONTINUATION, b"b" * 51)
    events = feed(conn, data)
    assert isinstance(events[-1], Closed) and events[-1].code == 1009


def test_message_at_exact_limits_passes() -> None:
    conn = open_conn(max_frame_size=100, max_message_size=150)
    data = frame(OP_TEXT, b"a" * 100, fin=False) + frame(OP_CONTINUATION, b"b" * 50)
    assert conn.receive_data(data) == ["a" * 100 + "b" * 50]
    small = open_conn(max_frame_size=5, max_message_size=5)
    assert small.receive_data(frame(OP_TEXT, b"12345")) == ["12345"]
    assert isinstance(small.receive_data(frame(OP_TEXT, b"123456"))[0], Closed)


@pytest.mark.parametrize("feed", FEEDERS)
def test_client_initiated_close_is_echoed(feed: Feeder) -> None:
    conn = open_conn()
    events = feed(conn, frame(OP_CLOSE, (4000).to_bytes(2, "big") + "bye ✓".encode()))
    assert len(events) == 1 and isinstance(events[0], Closed)
    assert (events[0].code, events[0].reason, events[0].error) == (4000, "bye ✓", False)
    assert conn.outgoing == [serialize(OP_CLOSE, (4000).to_bytes(2, "big"))]
    assert conn.state is ConnectionState.CLOSED


def test_empty_close_reports_1005_and_echoes_empty() -> None:
    conn = open_conn()
    events = conn.receive_data(frame(OP_CLOSE))
    assert isinstance(events[0], Closed) and events[0].code == 1005
    assert conn.outgoing == [serialize(OP_CLOSE, b"")]


def test_server_initiated_close_handshake() -> None:
    conn = open_conn()
    out = conn.close(1001, "going")
    assert out == serialize(OP_CLOSE, (1001).to_bytes(2, "big") + b"going")
    assert conn.state is ConnectionState.CLOSING
    # Data arriving while CLOSING is parsed but not delivered; pings are not answered.
    assert conn.receive_data(frame(OP_TEXT, b"late") + frame(OP_PING)) == []
    events = conn.receive_data(frame(OP_CLOSE, (1001).to_bytes(2, "big")))
    assert isinstance(events[0], Closed) and events[0].code == 1001
    assert conn.outgoing == []  # no second close frame
    assert conn.state is ConnectionState.CLOSED


def test_sending_requires_open_state() -> None:
    conn = Connection()
    with pytest.raises(InvalidState, match="expected state OPEN"):
        conn.send_text("x")
    conn.accept()
    with pytest.raises(InvalidState, match="expected state CONNECTING"):
        conn.accept()
    with pytest.raises(ValueError, match="close code"):
        conn.close(1006)
    conn.close()
    with pytest.raises(InvalidState, match="got CLOSING"):
        conn.send_bytes(b"x")


def test_bytes_before_accept_are_held_then_parsed() -> None:
    conn = Connection()
    assert conn.receive_data(frame(OP_TEXT, b"early")) == []
    conn.accept()
    assert conn.receive_data(b"") == ["early"]


def test_send_frames() -> None:
    conn = open_conn()
    assert conn.send_text("hé") == b"\x81\x03h\xc3\xa9"
    assert conn.send_bytes(b"\x00" * 200)[:4] == b"\x82\x7e\x00\xc8"
    assert conn.send_ping(b"abc") == b"\x89\x03abc"


def deflate_conn(**kw: object) -> Connection:
    return open_conn(deflate=PerMessageDeflate(DeflateParams()), **kw)


def client_compress(c: zlib._Compress, data: bytes) -> bytes:
    return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


@pytest.mark.parametrize("feed", FEEDERS)
def test_compressed_messages_whole_and_fragmented(feed: Feeder) -> None:
    conn = deflate_conn()
    c = zlib.compressobj(wbits=-15)
    one = client_compress(c, "compressed ✓ ".encode() * 20)
    two = client_compress(c, b"\x01\x02" * 100)
    data = (
        frame(OP_TEXT, one, rsv1=True)
        + frame(OP_BINARY, two[:3], fin=False, rsv1=True)
        + frame(OP_PING)
        + frame(OP_CONTINUATION, two[3:])
        + frame(OP_TEXT, b"plain")  # uncompressed messages stay allowed
    )
    assert feed(conn, data) == ["compressed ✓ " * 20, b"\x01\x02" * 100, "plain"]


def test_rsv1_on_continuation_is_1002() -> None:
    conn = deflate_conn()
    data = frame(OP_TEXT, b"a", fin=False) + frame(OP_CONTINUATION, b"b", rsv1=True)
    events = conn.receive_data(data)
    assert isinstance(events[0], Closed) and events[0].code == 1002


def test_rsv1_on_control_frame_is_1002() -> None:
    conn = deflate_conn()
    events = conn.receive_data(frame(OP_PING, b"", rsv1=True))
    assert isinstance(events[0], Closed) and events[0].code == 1002


def test_compressed_zip_bomb_is_1009() -> None:
    conn = deflate_conn(max_message_size=1024 * 1024)
    c = zlib.compressobj(wbits=-15)
    bomb = client_compress(c, b"\x00" * 20_000_000)
    assert len(bomb) < conn.max_frame_size
    events = conn.receive_data(frame(OP_BINARY, bomb, rsv1=True))
    assert isinstance(events[0], Closed) and events[0].code == 1009
    assert close_code_sent(conn) == 1009


def test_compressed_fragments_count_inflated_size() -> None:
    conn = deflate_conn(max_message_size=1000)
    c = zlib.compressobj(wbits=-15)
    payload = client_compress(c, b"a" * 1500)
    events = conn.receive_data(
        frame(OP_TEXT, payload[:4], fin=False, rsv1=True) + frame(OP_CONTINUATION, payload[4:])
    )
    assert isinstance(events[-1], Closed) and events[-1].code == 1009


def test_compressed_invalid_utf8_is_1007() -> None:
    conn = deflate_conn()
    c = zlib.compressobj(wbits=-15)
    events = conn.receive_data(frame(OP_TEXT, client_compress(c, b"\xff\xfe"), rsv1=True))
    assert isinstance(events[0], Closed) and events[0].code == 1007


def test_server_compresses_large_messages_only() -> None:
    conn = deflate_conn()
    assert conn.send_text("short") == b"\x81\x05short"
    big = conn.send_text("x" * 1000)
    assert big[0] == 0xC1  # FIN + RSV1 + text
    d = zlib.decompressobj(wbits=-15)
    assert d.decompress(big[2:] + b"\x00\x00\xff\xff") == b"x" * 1000


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.binary(max_size=40), max_size=12), compressed=st.booleans())
def test_arbitrary_bytes_give_events_or_a_close_never_an_exception(
    chunks: list[bytes], compressed: bool
) -> None:
    conn = (
        deflate_conn(max_message_size=64, max_frame_size=32)
        if compressed
        else open_conn(max_message_size=64, max_frame_size=32)
    )
    for chunk in chunks:
        for event in conn.receive_data(chunk):
            assert isinstance(event, str | bytes | Pong | Closed)
            if isinstance(event, Closed):
                assert event.error
                assert event.code in (1002, 1007, 1009)
                assert conn.state is ConnectionState.CLOSED
                assert close_code_sent(conn) == event.code


@settings(max_examples=200, deadline=None)
@given(
    frames=st.lists(
        st.tuples(
            st.sampled_from([OP_TEXT, OP_BINARY, OP_CONTINUATION, OP_PING, OP_PONG, OP_CLOSE, 3]),
            st.binary(max_size=30),
            st.booleans(),
            st.booleans(),
        ),
        max_size=8,
    ),
    split=st.integers(min_value=1, max_value=7),
)
def test_arbitrary_masked_frames_give_events_or_the_right_close(
    frames: list[tuple[int, bytes, bool, bool]], split: int
) -> None:
    conn = deflate_conn(max_message_size=64, max_frame_size=32)
    data = b"".join(frame(op, payload, fin=fin, rsv1=rsv1) for op, payload, fin, rsv1 in frames)
    events: list[Event] = []
    for i in range(0, len(data), split):
        events.extend(conn.receive_data(data[i : i + split]))
    for event in events:
        if isinstance(event, Closed) and event.error:
            assert event.code in (1002, 1007, 1009)
            assert close_code_sent(conn) == event.code


def test_control_frames_at_the_125_byte_limit() -> None:
    conn = open_conn()
    events = conn.receive_data(frame(OP_PING, b"p" * 125) + frame(OP_PONG, b"q" * 125))
    assert conn.outgoing == [serialize(OP_PONG, b"p" * 125)]
    assert isinstance(events[0], Pong) and events[0].payload == b"q" * 125
    reason = "r" * 123
    closed = conn.receive_data(frame(OP_CLOSE, (1000).to_bytes(2, "big") + reason.encode()))
    assert isinstance(closed[0], Closed) and closed[0].reason == reason


@pytest.mark.parametrize("feed", FEEDERS)
def test_empty_fragments_and_many_fragments(feed: Feeder) -> None:
    conn = open_conn()
    data = frame(OP_TEXT, b"", fin=False) + frame(OP_CONTINUATION, b"", fin=False)
    data += b"".join(frame(OP_CONTINUATION, bytes([65 + i % 26]), fin=False) for i in range(100))
    data += frame(OP_CONTINUATION, b"")
    expected = "".join(chr(65 + i % 26) for i in range(100))
    assert feed(conn, data) == [expected]


def test_text_stays_valid_when_a_code_point_spans_many_fragments() -> None:
    conn = open_conn()
    emoji = "🎉".encode()  # 4 bytes, one per fragment
    data = frame(OP_TEXT, emoji[:1], fin=False)
    data += frame(OP_CONTINUATION, emoji[1:2], fin=False)
    data += frame(OP_CONTINUATION, emoji[2:3], fin=False)
    data += frame(OP_CONTINUATION, emoji[3:])
    assert conn.receive_data(data) == ["🎉"]


def test_invalid_utf8_fails_on_the_fragment_that_carries_it() -> None:
    conn = open_conn()
    # The first fragment is already invalid: the close comes before the message ends.
    events = conn.receive_data(frame(OP_TEXT, b"ok\xff", fin=False))
    assert isinstance(events[0], Closed) and events[0].code == 1007


# -- hostile clients: fragment floods and ping floods ------------------------------------------


@pytest.mark.parametrize("feed", FEEDERS)
def test_a_message_in_more_fragments_than_the_cap_is_1009(feed: Feeder) -> None:
    at_cap = frame(OP_BINARY, b"a", fin=False) + frame(OP_CONTINUATION, b"b", fin=False) * 2
    at_cap += frame(OP_CONTINUATION, b"c")
    assert feed(open_conn(max_fragments=4), at_cap) == [b"abbc"]
    over = frame(OP_BINARY, b"a", fin=False) + frame(OP_CONTINUATION, b"b", fin=False) * 3
    over += frame(OP_CONTINUATION, b"c")
    conn = open_conn(max_fragments=4)
    (closed,) = feed(conn, over)
    assert isinstance(closed, Closed) and closed.error and closed.code == 1009
    assert closed.reason == "message in more than 4 fragments exceeds the limit"
    assert close_code_sent(conn) == 1009
    assert conn.state is ConnectionState.CLOSED


def test_empty_continuation_frames_are_capped_by_default() -> None:
    from narrows.server.config import Config

    assert Connection().max_fragments == Config().websocket_max_fragments == 16384
    conn = open_conn()
    empty = frame(OP_CONTINUATION, b"", fin=False)
    events = conn.receive_data(frame(OP_TEXT, b"", fin=False) + empty * 16382)
    assert events == [] and conn.state is ConnectionState.OPEN  # 16383 frames: still fine
    events = conn.receive_data(empty * 1000)  # they carry no bytes: only the count stops them
    assert len(events) == 1 and isinstance(events[0], Closed) and events[0].code == 1009
    assert conn.pending_bytes == 0


def test_fragments_are_assembled_in_one_buffer_not_one_object_each() -> None:
    import tracemalloc

    conn = open_conn(max_fragments=10**6)
    one_byte = frame(OP_CONTINUATION, b"z", fin=False)
    data = one_byte * 20_000
    conn.receive_data(frame(OP_BINARY, b"z", fin=False))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5):  # 100,000 one-byte fragments
            assert conn.receive_data(data) == []
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 100 KB of payload; a bytes object per fragment would hold ~4 MB (41 bytes each).
    assert held < 300_000, f"{held} bytes held for 100,000 one-byte fragments"
    (message,) = conn.receive_data(frame(OP_CONTINUATION, b"!"))
    assert message == b"z" * 100_001 + b"!"


@pytest.mark.parametrize("feed", FEEDERS)
def test_pings_not_yet_answered_coalesce_into_one_pong_for_the_latest(feed: Feeder) -> None:
    conn = open_conn()
    pings = b"".join(frame(OP_PING, b"%d" % i) for i in range(50))
    assert feed(conn, pings + frame(OP_TEXT, b"hi") + frame(OP_PING, b"last")) == ["hi"]
    assert conn.data_to_send() == serialize(OP_PONG, b"last")
    assert conn.outgoing == []
    # A close after an owed pong: the pong first, then the close echo, nothing merged.
    feed(conn, frame(OP_PING, b"p") + frame(OP_CLOSE, (1000).to_bytes(2, "big")))
    assert conn.data_to_send() == serialize(OP_PONG, b"p") + serialize(OP_CLOSE, b"\x03\xe8")
