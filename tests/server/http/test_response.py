"""Response head serialisation: the checks stay in force with the per-process caches (header
lines, whole heads), and the fast path of ``encode_head`` frames exactly as ``_framing``
(the full rules) does."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from narrows.server.http import response
from narrows.server.http.response import (
    LENGTH,
    InvalidResponse,
    _compose_head,
    _framing,
    encode_head,
)

DATE = b"date: Sun, 22 Nov 2026 01:02:03 GMT\r\n"
COMMON = {"date_line": DATE, "server_line": b""}


def head(headers: list[tuple[bytes, bytes]], body_length: int | None = 5) -> bytes:
    return encode_head(
        200,
        headers,
        http11=True,
        keep_alive=True,
        method_head=False,
        body_length=body_length,
        want_trailers=False,
        **COMMON,
    )[0]


def test_a_bad_value_is_refused_every_time_and_never_remembered() -> None:
    for _ in range(3):
        assert b"x-a: fine\r\n" in head([(b"x-a", b"fine")])
        with pytest.raises(InvalidResponse, match="CR, LF or NUL"):
            head([(b"x-a", b"fine\r\nx-injected: 1")])


def test_bytearray_and_memoryview_values_are_still_checked_and_written() -> None:
    assert b"x-b: ok\r\n" in head([(b"x-b", bytearray(b"ok"))])  # type: ignore[list-item]
    with pytest.raises(InvalidResponse, match="CR, LF or NUL"):
        head([(b"x-b", bytearray(b"bad\n"))])  # type: ignore[list-item]


def test_an_apps_own_content_length_matching_the_body_is_kept_once() -> None:
    data, framing, keep_alive, length = encode_head(
        200,
        [(b"content-length", b"5")],
        http11=True,
        keep_alive=True,
        method_head=False,
        body_length=5,
        want_trailers=False,
        **COMMON,
    )
    assert framing is LENGTH and keep_alive and length == 5
    assert data.count(b"content-length") == 1


def test_an_apps_content_length_other_than_the_body_is_kept_for_the_length_check() -> None:
    _, framing, _, length = encode_head(
        200,
        [(b"content-length", b"3")],
        http11=True,
        keep_alive=True,
        method_head=False,
        body_length=5,
        want_trailers=False,
        **COMMON,
    )
    assert framing is LENGTH and length == 3  # the cycle then refuses the longer body
    with pytest.raises(InvalidResponse, match="digits"):
        head([(b"content-length", b"5x")])


@given(
    status=st.sampled_from([100, 101, 199, 200, 201, 204, 299, 304, 404, 500, 999]),
    http11=st.booleans(),
    method_head=st.booleans(),
    chunked=st.booleans(),
    content_length=st.none() | st.integers(0, 20),
    body_length=st.none() | st.integers(0, 20),
    want_trailers=st.booleans(),
)
def test_the_fast_path_frames_as_the_full_rules_do(
    status: int,
    http11: bool,
    method_head: bool,
    chunked: bool,
    content_length: int | None,
    body_length: int | None,
    want_trailers: bool,
) -> None:
    headers = [(b"x-a", b"1")]
    if chunked:
        headers.append((b"transfer-encoding", b"chunked"))
    if content_length is not None:
        headers.append((b"content-length", b"%d" % content_length))
    try:
        expected = _framing(
            status, method_head, http11, chunked, content_length, body_length, want_trailers
        )
    except InvalidResponse:
        with pytest.raises(InvalidResponse):
            encode_head(
                status,
                headers,
                http11=http11,
                keep_alive=True,
                method_head=method_head,
                body_length=body_length,
                want_trailers=want_trailers,
                **COMMON,
            )
        return
    data, framing, _, length = encode_head(
        status,
        headers,
        http11=http11,
        keep_alive=True,
        method_head=method_head,
        body_length=body_length,
        want_trailers=want_trailers,
        **COMMON,
    )
    assert framing is expected
    if framing is LENGTH:
        assert length == (content_length if content_length is not None else body_length or 0)
        assert data.lower().count(b"content-length:") == 1


_names = st.sampled_from(
    [b"x-a", b"Content-Type", b"content-length", b"Connection", b"date", b"Server", b"bad name"]
)
_values = st.sampled_from([b"1", b"close", b"keep-alive", b" 7 ", b"x\r\ny", b"", b"12"])


def _outcome(headers: list[Any], body_length: int | None) -> object:
    try:
        return encode_head(
            200,
            headers,
            http11=True,
            keep_alive=True,
            method_head=False,
            body_length=body_length,
            want_trailers=False,
            **COMMON,
        )
    except InvalidResponse as exc:
        return ("InvalidResponse", str(exc))


@given(
    st.lists(st.tuples(_names, _values) | st.lists(_values, min_size=2, max_size=2), max_size=5),
    st.none() | st.integers(0, 20),
)
def test_remembered_header_lines_answer_as_the_checks_do(
    headers: list[Any], body_length: int | None
) -> None:
    # The same headers, with the per-process line cache empty, then filled by the first call.
    headers = [(item[0], item[1]) if isinstance(item, list) else item for item in headers]
    response._LINES.clear()
    unchecked = _outcome(headers, body_length)
    assert _outcome(headers, body_length) == unchecked
    as_lists = [list(item) for item in headers]  # unhashable pairs: never remembered
    assert _outcome(as_lists, body_length) == unchecked


def _composed(
    status: int, headers: list[Any], flags: tuple[bool, bool, bool, bool], body_length: int | None
) -> object:
    """What ``encode_head`` must answer: ``_compose_head``'s parts around the Date line."""
    http11, keep_alive, method_head, want_trailers = flags
    try:
        before, after, dated, framing, keep, length = _compose_head(
            status, headers, http11, keep_alive, method_head, body_length, want_trailers, b"s\r\n"
        )
    except InvalidResponse as exc:
        return ("InvalidResponse", str(exc))
    return (before + DATE + after if dated else before + after), framing, keep, length


def _encoded(
    status: int, headers: object, flags: tuple[bool, bool, bool, bool], body_length: int | None
) -> object:
    http11, keep_alive, method_head, want_trailers = flags
    try:
        return encode_head(
            status,
            headers,  # type: ignore[arg-type]
            http11=http11,
            keep_alive=keep_alive,
            method_head=method_head,
            body_length=body_length,
            want_trailers=want_trailers,
            date_line=DATE,
            server_line=b"s\r\n",
        )
    except InvalidResponse as exc:
        return ("InvalidResponse", str(exc))


@given(
    st.sampled_from([100, 200, 204, 304, 404, 999, 1000, 99]),
    st.lists(st.tuples(_names, _values), max_size=4),
    st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    st.none() | st.integers(0, 3) | st.just(2**70),
)
def test_a_remembered_head_is_the_head_composed_afresh(
    status: int,
    headers: list[Any],
    flags: tuple[bool, bool, bool, bool],
    body_length: int | None,
) -> None:
    response._HEADS.clear()
    expected = _composed(status, headers, flags, body_length)
    assert _encoded(status, headers, flags, body_length) == expected  # composed, remembered
    assert _encoded(status, list(headers), flags, body_length) == expected  # remembered
    assert _encoded(status, tuple(headers), flags, body_length) == expected
    assert _encoded(status, iter(headers), flags, body_length) == expected  # never remembered
    # Every input that shapes the head is in the key: changing any one is a different head.
    for other in [(not flags[0], *flags[1:]), (flags[0], not flags[1], *flags[2:])]:
        assert _encoded(status, headers, other, body_length) == _composed(
            status, headers, other, body_length
        )
    other_length = 7 if body_length is None else None
    assert _encoded(status, headers, flags, other_length) == _composed(
        status, headers, flags, other_length
    )


def test_a_remembered_head_follows_its_list_when_the_list_changes() -> None:
    response._HEADS.clear()
    headers = [(b"x-a", b"1")]
    assert b"x-a: 1\r\n" in head(headers)
    headers[0] = (b"x-a", b"2")
    assert b"x-a: 2\r\n" in head(headers) and b"x-a: 1" not in head(headers)
    headers.append((b"x-b", b"bad\n"))
    with pytest.raises(InvalidResponse, match="CR, LF or NUL"):
        head(headers)


def test_the_remembered_lines_are_bounded_and_make_room_for_new_ones() -> None:
    response._LINES.clear()
    for n in range(response._LINES_LIMIT + 10):
        response._header_line((b"set-cookie", b"s=%d" % n))
        assert len(response._LINES) <= response._LINES_LIMIT
    response._header_line((b"x-late", b"1"))
    assert (b"x-late", b"1") in response._LINES


def test_the_remembered_heads_are_bounded() -> None:
    response._HEADS.clear()
    for n in range(response._HEADS_LIMIT * 2):
        head([(b"x-n", b"%d" % n)])
        assert len(response._HEADS) <= response._HEADS_LIMIT
    head([(b"x-big", b"v" * response._HEAD_SIZE_LIMIT)])
    assert all(
        len(parts[0]) + len(parts[1]) <= response._HEAD_SIZE_LIMIT
        for parts in response._HEADS.values()
    )


_header_bytes = st.binary(max_size=12) | st.sampled_from(
    [b"Set-Cookie", b"x-a", b"a b", b"a:b", b"caf\xc3\xa9", b"", b"\x00", b"v\r\n", b"~|`^"]
)


@given(_header_bytes)
def test_the_translate_check_answers_as_the_regex_does(data: bytes) -> None:
    assert response._has_bad_byte(data) == (response._BAD_VALUE(data) is not None)
    assert response._has_bad_byte(bytearray(data)) == (response._BAD_VALUE(data) is not None)
    assert response._has_bad_byte(memoryview(data)) == (response._BAD_VALUE(data) is not None)


def test_a_value_that_is_not_bytes_like_is_refused_by_name() -> None:
    with pytest.raises(InvalidResponse, match=r"Expected headers as \(bytes, bytes\) pairs"):
        head([(b"x-a", "text")])  # type: ignore[list-item]
    with pytest.raises(InvalidResponse, match="Invalid response header name"):
        head([(b"x a", b"1")])
