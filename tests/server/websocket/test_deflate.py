"""permessage-deflate negotiation and bounded inflation."""

from __future__ import annotations

import os
import zlib

import pytest

from narrows.server.websocket.deflate import (
    DeflateError,
    DeflateParams,
    PerMessageDeflate,
    negotiate,
    parse_extensions,
)


def client_deflate(data: bytes, wbits: int = 15) -> bytes:
    c = zlib.compressobj(wbits=-wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def test_parse_extensions_with_quotes_and_several_headers() -> None:
    offers = parse_extensions(
        ['permessage-deflate; client_max_window_bits="10", x-other', "permessage-deflate"]
    )
    assert offers == [
        ("permessage-deflate", [("client_max_window_bits", "10")]),
        ("x-other", []),
        ("permessage-deflate", []),
    ]


def test_default_offer_from_browsers() -> None:
    params = negotiate(["permessage-deflate; client_max_window_bits"])
    assert params is not None
    assert params.response == (
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
    )
    assert params.client_max_window_bits == 12


def test_bare_offer_does_not_limit_the_client_window() -> None:
    params = negotiate(["permessage-deflate"])
    assert params is not None
    assert params.response == "permessage-deflate; server_max_window_bits=12"
    assert params.client_max_window_bits == 15


def test_no_context_takeover_and_window_bits_are_honoured() -> None:
    params = negotiate(
        [
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
            " server_max_window_bits=10; client_max_window_bits=9"
        ]
    )
    assert params is not None
    assert params.server_no_context_takeover and params.client_no_context_takeover
    assert params.server_max_window_bits == 10
    assert params.client_max_window_bits == 9
    assert "server_no_context_takeover" in params.response
    assert "client_no_context_takeover" in params.response
    assert "server_max_window_bits=10" in params.response
    assert "client_max_window_bits=9" in params.response


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; unknown=1",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        'permessage-deflate; client_max_window_bits="10',
        "x-webkit-deflate-frame",
    ],
)
def test_unacceptable_offers_are_declined(offer: str) -> None:
    assert negotiate([offer]) is None


def test_first_acceptable_offer_wins() -> None:
    refused = "permessage-deflate; server_max_window_bits=8"
    accepted = "permessage-deflate; server_max_window_bits=9"
    params = negotiate([f"{refused}, {accepted}"])
    assert params is not None
    assert params.server_max_window_bits == 9


def test_round_trip_with_context_takeover() -> None:
    ext = PerMessageDeflate(DeflateParams(server_max_window_bits=12))
    data = b"hello hello hello hello " * 10
    first = ext.compress(data)
    second = ext.compress(data)
    assert len(second) < len(first)  # the window remembers the previous message
    d = zlib.decompressobj(wbits=-12)
    assert d.decompress(first + b"\x00\x00\xff\xff") == data
    assert d.decompress(second + b"\x00\x00\xff\xff") == data


def test_server_no_context_takeover_resets_each_message() -> None:
    ext = PerMessageDeflate(DeflateParams(server_no_context_takeover=True))
    data = b"abcabcabc" * 20
    assert ext.compress(data) == ext.compress(data)


def test_inflate_across_messages_and_client_no_context_takeover() -> None:
    ext = PerMessageDeflate(DeflateParams())
    c = zlib.compressobj(wbits=-15)
    for _ in range(3):
        chunk = c.compress(b"payload" * 30) + c.flush(zlib.Z_SYNC_FLUSH)
        assert ext.decompress(chunk[:-4], 10_000, final=True) == b"payload" * 30
    nct = PerMessageDeflate(DeflateParams(client_no_context_takeover=True))
    for _ in range(3):
        assert nct.decompress(client_deflate(b"x" * 50), 10_000, final=True) == b"x" * 50


def test_zip_bomb_is_refused_without_inflating_it() -> None:
    bomb = client_deflate(b"\x00" * 50_000_000)
    assert len(bomb) < 100_000
    ext = PerMessageDeflate(DeflateParams())
    with pytest.raises(DeflateError) as info:
        ext.decompress(bomb, 1024 * 1024, final=True)
    assert info.value.code == 1009


def test_exact_limit_is_allowed() -> None:
    data = os.urandom(1000)
    ext = PerMessageDeflate(DeflateParams())
    assert ext.decompress(client_deflate(data), 1000, final=True) == data
    ext2 = PerMessageDeflate(DeflateParams())
    with pytest.raises(DeflateError):
        ext2.decompress(client_deflate(data), 999, final=True)


def test_corrupt_data_is_1007() -> None:
    ext = PerMessageDeflate(DeflateParams())
    with pytest.raises(DeflateError) as info:
        ext.decompress(b"\xff\xff\xff\xff", 1000, final=True)
    assert info.value.code == 1007
