"""Response head serialisation: the checks stay in force with the per-process caches, and
the fast path of ``encode_head`` frames exactly as ``_framing`` (the full rules) does."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from narrows.server.http import response
from narrows.server.http.response import (
    LENGTH,
    InvalidResponse,
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
