"""Response head serialisation: the checks stay in force with the per-process caches."""

from __future__ import annotations

import pytest

from narrows.server.http.response import LENGTH, InvalidResponse, encode_head

DATE = b"date: Sun, 22 Nov 2026 01:02:03 GMT\r\n"


def head(headers: list[tuple[bytes, bytes]], body_length: int | None = 5) -> bytes:
    return encode_head(200, headers, True, True, False, body_length, False, DATE, b"")[0]


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
        200, [(b"content-length", b"5")], True, True, False, 5, False, DATE, b""
    )
    assert framing is LENGTH and keep_alive and length == 5
    assert data.count(b"content-length") == 1


def test_an_apps_content_length_other_than_the_body_is_kept_for_the_length_check() -> None:
    _, framing, _, length = encode_head(
        200, [(b"content-length", b"3")], True, True, False, 5, False, DATE, b""
    )
    assert framing is LENGTH and length == 3  # the cycle then refuses the longer body
    with pytest.raises(InvalidResponse, match="digits"):
        head([(b"content-length", b"5x")])
