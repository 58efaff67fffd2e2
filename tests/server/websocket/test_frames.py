"""Frame codec: masking, serialization, close payloads."""

from __future__ import annotations

import os

import pytest

from narrows.server.websocket.frames import (
    OP_BINARY,
    OP_TEXT,
    apply_mask,
    close_payload,
    is_valid_close_code,
    serialize,
    serialize_masked,
    truncate_reason,
)


def slow_mask(payload: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 125, 126, 1000, 65536, 70001])
def test_apply_mask_matches_the_bytewise_definition(length: int) -> None:
    payload = os.urandom(length)
    mask = os.urandom(4)
    assert apply_mask(payload, mask) == slow_mask(payload, mask)
    assert apply_mask(apply_mask(payload, mask), mask) == payload


def test_apply_mask_keeps_trailing_zero_bytes() -> None:
    # int.from_bytes/to_bytes must not drop high zero bytes.
    assert apply_mask(b"\x00\x00\x00\x00\x00", b"\x00\x00\x00\x00") == b"\x00" * 5


@pytest.mark.parametrize(
    ("length", "header"),
    [
        (0, b"\x81\x00"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (65535, b"\x81\x7e\xff\xff"),
    ],
)
def test_serialize_length_encodings(length: int, header: bytes) -> None:
    frame = serialize(OP_TEXT, b"a" * length)
    assert frame[: len(header)] == header
    assert len(frame) == len(header) + length


def test_serialize_64_bit_length_and_flags() -> None:
    frame = serialize(OP_BINARY, b"x" * 65536, fin=False, rsv1=True)
    assert frame[0] == 0x40 | OP_BINARY
    assert frame[1] == 127
    assert int.from_bytes(frame[2:10], "big") == 65536


def test_serialize_masked_sets_mask_bit_and_masks() -> None:
    frame = serialize_masked(OP_TEXT, b"hello", b"abcd")
    assert frame[:2] == b"\x81\x85"
    assert frame[2:6] == b"abcd"
    assert apply_mask(frame[6:], b"abcd") == b"hello"


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4999])
def test_valid_close_codes(code: int) -> None:
    assert is_valid_close_code(code)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_invalid_close_codes(code: int) -> None:
    assert not is_valid_close_code(code)


def test_close_payload_and_reason_truncation() -> None:
    assert close_payload(None) == b""
    assert close_payload(1000, "bye") == b"\x03\xe8bye"
    long = "é" * 100  # 200 bytes in UTF-8
    cut = truncate_reason(long)
    assert len(cut.encode()) <= 123
    assert cut == "é" * 61
