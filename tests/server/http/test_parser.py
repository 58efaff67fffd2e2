"""The sans-I/O request parser: every case fed whole and byte by byte, plus a property test."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from narrows.server.http import parser as parser_module
from narrows.server.http.parser import (
    MESSAGE_COMPLETE,
    BodyChunk,
    Event,
    MessageComplete,
    ProtocolError,
    RequestHead,
    RequestParser,
)


def named(events: list[Event]) -> list[Any]:
    """The events with each head (a plain tuple) as a ``RequestHead``: fields by name."""
    return [RequestHead._make(e) if type(e) is tuple else e for e in events]


def feed_whole(data: bytes, **limits: int) -> tuple[list[Any], RequestParser]:
    parser = RequestParser(**limits)
    return named(parser.feed(data)), parser


def feed_bytewise(data: bytes, **limits: int) -> tuple[list[Any], RequestParser]:
    parser = RequestParser(**limits)
    events: list[Event] = []
    for i in range(len(data)):
        events += parser.feed(data[i : i + 1])
    return named(events), parser


def test_a_head_is_a_plain_tuple_in_the_order_of_request_heads_fields() -> None:
    (head, end) = RequestParser().feed(b"GET /p?q HTTP/1.1\r\nHost: a\r\n\r\n")
    assert type(head) is tuple and end is MESSAGE_COMPLETE
    assert RequestHead._make(head) == RequestHead(
        "GET", b"/p?q", "1.1", [(b"host", b"a")], True, None, False, None
    )
    assert head[parser_module.HEAD_UPGRADE] is None
    assert RequestHead._fields.index("upgrade") == parser_module.HEAD_UPGRADE


FEEDERS = [pytest.param(feed_whole, id="whole"), pytest.param(feed_bytewise, id="bytewise")]


def normalise(events: list[Event]) -> list[object]:
    """Merge adjacent body chunks (byte-by-byte feeding splits them) into comparable values."""
    out: list[object] = []
    for event in events:
        if isinstance(event, BodyChunk):
            if out and isinstance(out[-1], bytes):
                out[-1] += event.data
            else:
                out.append(event.data)
        elif isinstance(event, RequestHead):
            out.append(
                (
                    event.method,
                    event.target,
                    event.http_version,
                    event.headers,
                    event.keep_alive,
                    event.upgrade,
                    event.expect_continue,
                )
            )
        else:
            out.append(event)
    return out


@pytest.mark.parametrize("feed", FEEDERS)
def test_simple_get(feed) -> None:
    events, _ = feed(b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Y: z\r\n\r\n")
    assert normalise(events) == [
        (
            "GET",
            b"/a/b?x=1",
            "1.1",
            [(b"host", b"example.com"), (b"x-y", b"z")],
            True,
            None,
            False,
        ),
        MESSAGE_COMPLETE,
    ]


@pytest.mark.parametrize("feed", FEEDERS)
def test_content_length_body(feed) -> None:
    events, _ = feed(b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    assert normalise(events)[1:] == [b"hello", MESSAGE_COMPLETE]


@pytest.mark.parametrize("feed", FEEDERS)
def test_chunked_body_with_extension_and_trailer(feed) -> None:
    data = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    events, _ = feed(data)
    assert normalise(events)[1:] == [b"abcde", MESSAGE_COMPLETE]


@pytest.mark.parametrize("feed", FEEDERS)
def test_pipelined_requests_in_order(feed) -> None:
    data = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
    events, _ = feed(data)
    heads = [e.target for e in events if isinstance(e, RequestHead)]
    assert heads == [b"/1", b"/2"]
    assert sum(isinstance(e, MessageComplete) for e in events) == 2


@pytest.mark.parametrize("feed", FEEDERS)
def test_http10_without_host_and_not_keep_alive(feed) -> None:
    events, _ = feed(b"GET / HTTP/1.0\r\n\r\n")
    head = events[0]
    assert isinstance(head, RequestHead)
    assert head.http_version == "1.0"
    assert head.keep_alive is False


@pytest.mark.parametrize("feed", FEEDERS)
def test_http10_keep_alive_header(feed) -> None:
    events, _ = feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert isinstance(events[0], RequestHead) and events[0].keep_alive is True


@pytest.mark.parametrize("feed", FEEDERS)
def test_connection_close(feed) -> None:
    events, _ = feed(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert isinstance(events[0], RequestHead) and events[0].keep_alive is False


@pytest.mark.parametrize("feed", FEEDERS)
def test_expect_continue(feed) -> None:
    events, _ = feed(
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
    )
    assert isinstance(events[0], RequestHead) and events[0].expect_continue is True


@pytest.mark.parametrize("feed", FEEDERS)
def test_expect_continue_is_ignored_on_http10(feed) -> None:
    events, _ = feed(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
    assert isinstance(events[0], RequestHead) and events[0].expect_continue is False


@pytest.mark.parametrize("feed", FEEDERS)
def test_ows_around_field_values_is_stripped_before_the_checks(feed) -> None:
    events, _ = feed(
        b"GET / HTTP/1.1\r\nHost: a:80 \t\r\nX-A:  v 1 \r\nUpgrade: WebSocket \r\n"
        b"Connection: Upgrade\r\nExpect: 100-continue \r\n\r\n"
    )
    head = events[0]
    assert isinstance(head, RequestHead)
    assert head.headers[:2] == [(b"host", b"a:80"), (b"x-a", b"v 1")]
    assert head.upgrade == b"websocket"
    assert head.expect_continue is True


@pytest.mark.parametrize("feed", FEEDERS)
@pytest.mark.parametrize("byte", [b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x85"])
def test_line_boundary_bytes_in_field_values_are_400(feed, byte: bytes) -> None:
    events, parser = feed(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \xc3" + byte + b"\r\n\r\n")
    assert len(events) == 1 and isinstance(events[0], ProtocolError)
    assert events[0].status == 400
    assert parser.dead


@pytest.mark.parametrize("feed", FEEDERS)
def test_other_obs_text_in_field_values_is_kept(feed) -> None:
    events, _ = feed(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xc3\xa9\r\n\r\n")
    assert isinstance(events[0], RequestHead)
    assert events[0].headers[1] == (b"x-a", b"caf\xc3\xa9")


@pytest.mark.parametrize("feed", FEEDERS)
def test_daphne_root_path_is_taken_out_of_the_headers(feed) -> None:
    events, _ = feed(
        b"GET / HTTP/1.1\r\nHost: a\r\nDaphne-Root-Path: /forum \r\nX-A: 1\r\n\r\n"
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    first, second = (e for e in events if isinstance(e, RequestHead))
    assert first.root_path == b"/forum"
    assert first.headers == [(b"host", b"a"), (b"x-a", b"1")]
    assert second.root_path is None


@pytest.mark.parametrize("feed", FEEDERS)
def test_websocket_upgrade_stops_with_trailing_bytes(feed) -> None:
    data = (
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n\x81\x00"
    )
    events, parser = feed(data)
    assert isinstance(events[0], RequestHead)
    assert events[0].upgrade == b"websocket"
    assert parser.upgraded
    if feed is feed_whole:
        assert parser.trailing == b"\x81\x00"
    assert parser.feed(b"more") == []


BAD = [
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400),
    (b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
]


@pytest.mark.parametrize("feed", FEEDERS)
@pytest.mark.parametrize(("data", "status"), BAD)
def test_rejected_requests(feed, data: bytes, status: int) -> None:
    events, parser = feed(data)
    errors = [e for e in events if isinstance(e, ProtocolError)]
    assert len(errors) == 1, events
    assert events[-1] is errors[0]
    assert errors[0].status == status
    assert errors[0].reason
    assert parser.dead
    assert parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") == []


@pytest.mark.parametrize("feed", FEEDERS)
def test_request_line_too_long_is_414(feed) -> None:
    data = b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    events, _ = feed(data, max_request_line=100)
    assert events[-1] == ProtocolError(414, "Request line too long (limit 100 bytes)")


@pytest.mark.parametrize("feed", FEEDERS)
def test_header_block_too_large_is_431(feed) -> None:
    data = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 2000 + b"\r\n\r\n"
    events, _ = feed(data, max_header_size=1000)
    assert isinstance(events[-1], ProtocolError) and events[-1].status == 431


@pytest.mark.parametrize("feed", FEEDERS)
def test_too_many_headers_is_431(feed) -> None:
    data = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(20))
    events, _ = feed(data + b"\r\n", max_header_count=10)
    assert events[-1] == ProtocolError(431, "Too many request headers (limit 10)")


CHUNK_EXT_LIMIT = ProtocolError(400, "Chunk extensions too long (limit 16384 bytes per chunk)")


@pytest.mark.parametrize("feed", FEEDERS)
def test_huge_chunk_extension_is_400(feed) -> None:
    head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    data = head + b"5;a=" + b"b" * 100_000 + b"\r\nhello\r\n0\r\n\r\n"
    events, parser = feed(data)
    assert events[-1] == CHUNK_EXT_LIMIT
    assert parser.dead


def test_many_chunks_large_bodies_and_trailers_stay_within_the_chunk_framing_limit() -> None:
    chunks = b"".join(b"3e8;n=v\r\n" + b"a" * 1000 + b"\r\n" for _ in range(200))
    big = b"493e0\r\n" + b"z" * 300_000 + b"\r\n"
    data = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks
        + big
        + b"0\r\nX-Trailer: "
        + b"t" * 20_000
        + b"\r\n\r\n"
        + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    events, _ = feed_whole(data)
    body = sum(len(e.data) for e in events if isinstance(e, BodyChunk))
    assert body == 200 * 1000 + 300_000
    assert [type(e) for e in events if not isinstance(e, BodyChunk)] == [
        RequestHead,
        MessageComplete,
        RequestHead,
        MessageComplete,
    ]


def test_endless_header_without_newline_is_431() -> None:
    parser = RequestParser(max_header_size=1000, max_request_line=100)
    events: list[Event] = parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX: ")
    for _ in range(20):
        events += parser.feed(b"v" * 100)
    assert isinstance(events[-1], ProtocolError) and events[-1].status == 431


def test_in_head_tracks_partial_heads() -> None:
    parser = RequestParser()
    assert not parser.in_head
    parser.feed(b"GET / HT")
    assert parser.in_head
    parser.feed(b"TP/1.1\r\nHost: a\r\n\r\n")
    assert not parser.in_head


def test_body_is_streamed_as_it_arrives() -> None:
    parser = RequestParser()
    events = named(parser.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"))
    assert [type(e) for e in events] == [RequestHead, BodyChunk]
    more = parser.feed(b"defg")
    assert [type(e) for e in more] == [BodyChunk]
    assert more[0].data == b"defg"  # type: ignore[union-attr]
    assert parser.feed(b"hij")[-1] is MESSAGE_COMPLETE


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_parse_or_fail_cleanly(data: bytes) -> None:
    for feed in (feed_whole, feed_bytewise):
        events, _ = feed(data)
        for index, event in enumerate(events):
            assert isinstance(event, RequestHead | BodyChunk | MessageComplete | ProtocolError)
            if isinstance(event, ProtocolError):
                assert 400 <= event.status < 600
                assert index == len(events) - 1


request_lines = st.builds(
    lambda method, path, headers, body: (
        method.encode()
        + b" /"
        + path.encode()
        + b" HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"%s: %s\r\n" % (k, v) for k, v in headers)
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    ),
    st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    st.text(alphabet="abcxyz0123/-_.~%", max_size=30),
    st.lists(
        st.tuples(
            st.sampled_from([b"x-a", b"accept", b"x-b", b"cookie"]),
            st.binary(max_size=20).map(
                lambda v: bytes(c for c in v if c >= 0x20 and c not in (0x7F, 0x85)).strip()
            ),
        ),
        max_size=5,
    ),
    st.binary(max_size=50),
)


@settings(max_examples=200, deadline=None)
@given(request_lines, st.binary(max_size=40))
def test_valid_request_then_garbage(request: bytes, garbage: bytes) -> None:
    """A valid request is always delivered whole, whatever follows it."""
    for feed in (feed_whole, feed_bytewise):
        events, _ = feed(request + garbage)
        assert isinstance(events[0], RequestHead)
        assert MESSAGE_COMPLETE in events
        for event in events:
            assert isinstance(event, RequestHead | BodyChunk | MessageComplete | ProtocolError)


def test_http_version_of_each_pipelined_request_in_one_read() -> None:
    # The first request line of a read is read for " HTTP/1.1" (a shortcut past httptools'
    # version formatting); the requests after it, and a body that looks like a request line,
    # must still report their own version.
    data = (
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n"
        b"x HTTP/1.1\r\n"
        b"GET /b HTTP/1.0\r\n\r\n"
    )
    events, _ = feed_whole(data)
    heads = [e for e in events if isinstance(e, RequestHead)]
    assert [(h.target, h.http_version) for h in heads] == [(b"/a", "1.1"), (b"/b", "1.0")]


def test_http_version_when_a_read_starts_inside_a_body() -> None:
    parser = RequestParser()
    first = parser.feed(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\n")
    rest = parser.feed(
        b"ab HTTP/1.1\r\nGET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    heads = [e for e in named(first + rest) if isinstance(e, RequestHead)]
    assert [(h.target, h.http_version) for h in heads] == [
        (b"/a", "1.1"),
        (b"/b", "1.0"),
        (b"/c", "1.1"),
    ]


@pytest.mark.parametrize("feed", FEEDERS)
def test_http_version_one_zero_and_one_one_heads_split_anywhere(feed: Any) -> None:
    data = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    events, _ = feed(data + b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + data)
    heads = [e for e in events if isinstance(e, RequestHead)]
    assert [h.http_version for h in heads] == ["1.1", "1.0", "1.1"]


_versioned_requests = st.lists(
    st.tuples(
        st.sampled_from([b"GET", b"HEAD", b"DELETE", b"OPTIONS"]),
        st.sampled_from([b"/", b"/a", b"/HTTP/1.1", b"/x?q=%20HTTP/1.1", b"/HTTP/1.1\\r"]),
        st.sampled_from([b"1.0", b"1.1"]),
        st.sampled_from([b"", b"\r\n", b"\r\n\r\n"]),  # empty lines before the request line
    ),
    min_size=1,
    max_size=4,
)


@given(_versioned_requests, st.lists(st.integers(1, 60), max_size=8))
def test_http_version_read_from_the_data_is_the_one_llhttp_parsed(
    requests: list[tuple[bytes, bytes, bytes, bytes]], cuts: list[int]
) -> None:
    # The version is read from the request line when the head began at the start of a read
    # (a shortcut past httptools' version formatting): it must agree with the request line
    # however the bytes are split, with empty lines before it, and for pipelined requests.
    data = b"".join(
        empty + method + b" " + target + b" HTTP/" + version + b"\r\nHost: x\r\n"
        b"Connection: keep-alive\r\n\r\n"
        for method, target, version, empty in requests
    )
    parser = RequestParser()
    events: list[Event] = []
    start = 0
    for cut in [*cuts, len(data)]:
        events += parser.feed(data[start : start + cut])
        start += cut
    events += parser.feed(data[start:])
    heads = [e for e in named(events) if isinstance(e, RequestHead)]
    assert not [e for e in events if isinstance(e, ProtocolError)]
    assert [(h.target, h.http_version) for h in heads] == [
        (target, version.decode()) for _, target, version, _ in requests
    ]


@given(
    st.lists(
        st.sampled_from(
            [b"/", b"/a#b", b"/#", b"*", b"http://x/a", b"/a?b=#", b"//a", b"/" + b"a" * 300]
        ),
        min_size=1,
        max_size=6,
    )
)
def test_targets_remembered_as_plain_are_judged_as_the_checks_do(targets: list[bytes]) -> None:
    def outcome(target: bytes) -> object:
        events, _ = feed_whole(b"OPTIONS " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        return normalise(events)

    parser_module._PLAIN_TARGETS.clear()
    first = [outcome(t) for t in targets]
    assert [outcome(t) for t in targets] == first  # now partly from the cache


_TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(sorted(parser_module._KNOWN_NAMES)),  # the looked-up names
                st.text(_TOKEN_CHARS, min_size=1, max_size=20).map(str.encode),
            ),
            st.text(" \t", max_size=2).map(str.encode),
            st.text("abc ,;=\t", max_size=12).map(str.encode),
            st.text(" \t", max_size=2).map(str.encode),
        ),
        max_size=8,
    )
)
def test_field_names_and_values_are_normalised_as_lower_and_strip_do(
    fields: list[tuple[bytes, bytes, bytes, bytes]],
) -> None:
    """Names found in ``_KNOWN_NAMES`` and values without OWS at their ends skip the
    method calls: the headers come out as ``name.lower()`` and ``value.strip(" \\t")``."""
    fields = [f for f in fields if f[0].lower() not in parser_module._SPECIAL_HEADERS]
    data = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(
        name + b":" + before + value + after + b"\r\n" for name, before, value, after in fields
    )
    events, _ = feed_whole(data + b"\r\n")
    [head, _end] = events
    assert isinstance(head, RequestHead)
    assert head.headers == [(b"host", b"x")] + [
        (name.lower(), (before + value + after).strip(b" \t"))
        for name, before, value, after in fields
    ]
    special = parser_module._SPECIAL_HEADERS
    assert all(
        known == (name.lower(), special.get(name.lower()))
        for name, known in parser_module._KNOWN_NAMES.items()
    )


def _feed_in_pieces(data: bytes, cuts: list[int]) -> list[Any]:
    parser = RequestParser()
    events: list[Event] = []
    start = 0
    for cut in cuts:
        events += parser.feed(data[start : start + cut])
        start += cut
    events += parser.feed(data[start:])
    return named(events)


_BOUNDARY_HEAD = b"GET / HTTP/1.1\r\nHost: a\r\nX-B: plain\r\nX-A: caf\xc3\x85 x\r\nX-C: 1\r\n\r\n"


@given(st.lists(st.integers(1, 30), max_size=6))
def test_line_boundary_bytes_are_found_however_the_head_is_split(cuts: list[int]) -> None:
    """The obs-text check looks at a whole read once when it is all ASCII, else at each
    field value: a read that is ASCII after one that was not still gets the check."""
    events = _feed_in_pieces(_BOUNDARY_HEAD, cuts)
    assert [type(e) for e in events] == [ProtocolError], events
    assert events[0].status == 400


@given(st.lists(st.integers(1, 30), max_size=6))
def test_a_line_boundary_byte_in_a_head_after_a_body_in_the_same_read_is_found(
    cuts: list[int],
) -> None:
    first = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab"
    data = first + b"cde" + _BOUNDARY_HEAD
    events = _feed_in_pieces(data, [len(first), *cuts])
    heads = [e for e in events if isinstance(e, RequestHead)]
    errors = [e for e in events if isinstance(e, ProtocolError)]
    assert len(heads) == 1 and heads[0].method == "POST"
    assert [e.status for e in errors] == [400]


def test_obs_text_the_check_allows_is_kept_when_split_across_reads() -> None:
    data = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xc3\xa9\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
    for cut in range(1, len(data)):
        events = _feed_in_pieces(data, [cut])
        heads = [e for e in events if isinstance(e, RequestHead)]
        assert [h.headers for h in heads] == [
            [(b"host", b"a"), (b"x-a", b"caf\xc3\xa9")],
            [(b"host", b"a")],
        ], cut
