"""Opening handshake validation and response bytes."""

from __future__ import annotations

import base64

import pytest

from narrows.server.http.response import InvalidResponse, check_header
from narrows.server.state import UpgradeRequest
from narrows.server.websocket.handshake import (
    HandshakeError,
    accept_key,
    accept_response,
    http_response,
    validate,
)

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def make_request(headers: list[tuple[bytes, bytes]] | None = None, **kw: object) -> UpgradeRequest:
    base = [
        (b"host", b"example.com"),
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-key", KEY),
        (b"sec-websocket-version", b"13"),
    ]
    fields: dict[str, object] = {
        "http_version": "1.1",
        "method": "GET",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "headers": base if headers is None else headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "scheme": "ws",
        "root_path": "",
    }
    fields.update(kw)
    return UpgradeRequest(**fields)  # type: ignore[arg-type]


def without(name: bytes) -> list[tuple[bytes, bytes]]:
    return [(n, v) for n, v in make_request().headers if n != name]


def test_rfc_example_accept_key() -> None:
    assert accept_key(KEY) == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_valid_request_with_subprotocols_and_extensions() -> None:
    headers = [
        *make_request().headers,
        (b"connection", b"keep-alive"),
        (b"sec-websocket-protocol", b"chat, superchat"),
        (b"sec-websocket-protocol", b"v2"),
        (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
    ]
    hs = validate(make_request(headers))
    assert hs.key == KEY
    assert hs.subprotocols == ["chat", "superchat", "v2"]
    assert hs.extensions == ["permessage-deflate; client_max_window_bits"]


def test_connection_header_token_list_is_case_insensitive() -> None:
    headers = [*without(b"connection"), (b"connection", b"keep-alive, UPGRADE")]
    assert validate(make_request(headers)).key == KEY


@pytest.mark.parametrize(
    ("headers", "status", "fragment"),
    [
        (without(b"connection"), 400, "Connection"),
        ([*without(b"connection"), (b"connection", b"keep-alive")], 400, "Connection"),
        (without(b"upgrade"), 400, "Upgrade"),
        ([*without(b"upgrade"), (b"upgrade", b"h2c")], 400, "Upgrade"),
        (without(b"sec-websocket-key"), 400, "Sec-WebSocket-Key"),
        ([*without(b"sec-websocket-key"), (b"sec-websocket-key", b"short")], 400, "16 bytes"),
        ([*make_request().headers, (b"sec-websocket-key", KEY)], 400, "one Sec-WebSocket-Key"),
        (without(b"sec-websocket-version"), 426, "Version 13"),
        ([*without(b"sec-websocket-version"), (b"sec-websocket-version", b"8")], 426, "got 8"),
    ],
)
def test_invalid_requests(headers: list[tuple[bytes, bytes]], status: int, fragment: str) -> None:
    with pytest.raises(HandshakeError) as info:
        validate(make_request(headers))
    assert info.value.status == status
    assert fragment in info.value.message
    if status == 426:
        assert (b"sec-websocket-version", b"13") in info.value.headers


def test_non_get_and_http10_are_refused() -> None:
    with pytest.raises(HandshakeError, match="expected method GET"):
        validate(make_request(method="POST"))
    with pytest.raises(HandshakeError, match=r"HTTP/1\.1"):
        validate(make_request(http_version="1.0"))


def test_key_must_decode_to_16_bytes() -> None:
    bad = base64.b64encode(b"x" * 15)
    headers = [*without(b"sec-websocket-key"), (b"sec-websocket-key", bad)]
    with pytest.raises(HandshakeError):
        validate(make_request(headers))


def test_accept_response_bytes() -> None:
    head = accept_response(
        KEY,
        subprotocol="chat",
        extension="permessage-deflate; server_max_window_bits=12",
        headers=[(b"set-cookie", b"a=b"), (b"upgrade", b"evil")],
        server_name="narrows",
    )
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert head.endswith(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in lines
    assert b"Sec-WebSocket-Protocol: chat" in lines
    assert b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12" in lines
    assert b"set-cookie: a=b" in lines
    assert b"upgrade: evil" not in lines
    assert b"Server: narrows" in lines


@pytest.mark.parametrize(
    ("subprotocol", "headers", "match"),
    [
        (None, [(b"x", b"a\r\nb")], "value contains CR, LF or NUL"),
        (None, [(b"x", b"a\nb")], "value contains CR, LF or NUL"),
        (None, [(b"x", b"a\0b")], "value contains CR, LF or NUL"),
        (None, [(b"x bad:", b"1")], "Invalid response header name"),
        (None, [(b"x\r\nSet-Cookie", b"1")], "Invalid response header name"),
        (None, [("x", b"1")], "Expected header name and value as bytes"),
        ("x\r\nSet-Cookie: evil=1", [], "subprotocol to be a token"),
        ("chat v2", [], "subprotocol to be a token"),
        ("chät", [], "subprotocol to be a token"),
        ("", [], "subprotocol to be a token"),
    ],
)
def test_accept_response_refuses_what_would_split_the_head(
    subprotocol: str | None, headers: list[tuple[bytes, bytes]], match: str
) -> None:
    with pytest.raises(InvalidResponse, match=match):
        accept_response(
            KEY, subprotocol=subprotocol, extension=None, headers=headers, server_name=None
        )


@pytest.mark.parametrize(
    "header", [(b"x-a", b"1\r\nSet-Cookie: evil=1"), (b"x a", b"1"), (b"", b"1")]
)
def test_http_response_validates_as_http_does(header: tuple[bytes, bytes]) -> None:
    with pytest.raises(InvalidResponse):
        http_response(403, headers=[header], server_name=None)
    with pytest.raises(InvalidResponse):  # the very same rule as for an HTTP response
        check_header(header)


def test_http_response_sets_length_and_close() -> None:
    raw = http_response(
        418, headers=[(b"content-length", b"999"), (b"x-a", b"1")], body=b"teapot", server_name=None
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 418 I'm a Teapot")
    assert b"content-length: 6" in head.split(b"\r\n")
    assert b"Connection: close" in head.split(b"\r\n")
    assert body == b"teapot"
