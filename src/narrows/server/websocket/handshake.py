"""The WebSocket opening handshake (RFC 6455 section 4.2), sans-I/O.

``validate`` checks an ``UpgradeRequest`` and returns what the rest of the connection needs;
a request that is not a valid WebSocket handshake raises ``HandshakeError`` carrying the
HTTP response to send instead (400, or 426 with ``Sec-WebSocket-Version: 13``).
``accept_response`` and ``http_response`` build the bytes of the 101 and of any other
response (403 rejection, 500, the app's denial response). Header names and values from the
app are checked by the same function as HTTP responses' (``narrows.server.http.response.
check_header``: a name that is not a token, or a value with CR, LF or NUL, raises
``InvalidResponse``), and so is the subprotocol the app accepts with, which must also be a
token (RFC 6455 section 4.3): nothing the app passes can split the response.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Final

from narrows.server.http.response import InvalidResponse, check_header
from narrows.server.state import UpgradeRequest
from narrows.types import HeaderIterable

GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SUPPORTED_VERSION: Final = "13"


class HandshakeError(Exception):
    """The request cannot become a WebSocket; ``status`` and ``headers`` say how to answer."""

    def __init__(
        self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


@dataclass(slots=True)
class Handshake:
    """What a valid handshake request carries for the rest of the connection."""

    key: bytes
    subprotocols: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)  # raw Sec-WebSocket-Extensions values


def accept_key(key: bytes) -> bytes:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def _tokens(values: list[bytes]) -> set[str]:
    return {
        token.strip().lower()
        for value in values
        for token in value.decode("latin-1").split(",")
        if token.strip()
    }


def _list_values(values: list[bytes]) -> list[str]:
    return [
        token.strip()
        for value in values
        for token in value.decode("latin-1").split(",")
        if token.strip()
    ]


def validate(request: UpgradeRequest) -> Handshake:
    """Check ``request`` is a WebSocket opening handshake; raise ``HandshakeError`` if not."""
    if request.method != "GET":
        raise HandshakeError(400, f"expected method GET for a WebSocket, got {request.method}")
    if request.http_version in ("0.9", "1.0"):
        raise HandshakeError(
            400, f"expected HTTP/1.1 for a WebSocket, got HTTP/{request.http_version}"
        )
    by_name: dict[bytes, list[bytes]] = {}
    for name, value in request.headers:
        by_name.setdefault(name, []).append(value)

    connection = _tokens(by_name.get(b"connection", []))
    if "upgrade" not in connection:
        got = ", ".join(sorted(connection)) or "none"
        raise HandshakeError(400, f"expected 'Upgrade' in the Connection header, got {got}")
    upgrade = _tokens(by_name.get(b"upgrade", []))
    if "websocket" not in upgrade:
        got = ", ".join(sorted(upgrade)) or "none"
        raise HandshakeError(400, f"expected 'websocket' in the Upgrade header, got {got}")

    versions = by_name.get(b"sec-websocket-version", [])
    version = b",".join(versions).decode("latin-1").strip()
    if version != SUPPORTED_VERSION:
        raise HandshakeError(
            426,
            f"expected Sec-WebSocket-Version 13, got {version or 'none'}",
            [(b"sec-websocket-version", SUPPORTED_VERSION.encode())],
        )

    keys = by_name.get(b"sec-websocket-key", [])
    if len(keys) != 1:
        raise HandshakeError(400, f"expected one Sec-WebSocket-Key header, got {len(keys)}")
    key = keys[0].strip()
    try:
        raw_key = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw_key = b""
    if len(raw_key) != 16:
        raise HandshakeError(
            400, f"expected Sec-WebSocket-Key to be 16 bytes in base64, got {key!r}"
        )
    return Handshake(
        key=key,
        subprotocols=_list_values(by_name.get(b"sec-websocket-protocol", [])),
        extensions=[v.decode("latin-1") for v in by_name.get(b"sec-websocket-extensions", [])],
    )


def _date_header() -> bytes:
    return formatdate(usegmt=True).encode("ascii")


def _head(status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    lines = [f"HTTP/1.1 {status} {phrase}".encode("latin-1")]
    lines.extend(name + b": " + value for name, value in headers)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _subprotocol_value(subprotocol: str) -> bytes:
    try:
        value = subprotocol.encode("ascii")
    except UnicodeEncodeError:
        value = b""
    if not _is_token(value):
        raise InvalidResponse(
            f"Expected the accepted subprotocol to be a token, got {subprotocol!r}"
        )
    return value


def _is_token(value: bytes) -> bool:
    try:
        check_header((value, b""))
    except InvalidResponse:
        return False
    return True


def accept_response(
    key: bytes,
    *,
    subprotocol: str | None,
    extension: str | None,
    headers: HeaderIterable = (),
    server_name: str | None,
) -> bytes:
    """The ``101 Switching Protocols`` response completing the handshake."""
    out: list[tuple[bytes, bytes]] = [
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Accept", accept_key(key)),
    ]
    if subprotocol is not None:
        out.append((b"Sec-WebSocket-Protocol", _subprotocol_value(subprotocol)))
    if extension is not None:
        out.append((b"Sec-WebSocket-Extensions", extension.encode("latin-1")))
    if server_name:
        out.append((b"Server", server_name.encode("latin-1")))
    out.append((b"Date", _date_header()))
    reserved = {b"upgrade", b"connection", b"sec-websocket-accept", b"sec-websocket-extensions"}
    for item in headers:
        name, value = check_header(item)
        if name.lower() in reserved:
            continue  # the handshake headers are the server's to set
        out.append((name, value))
    return _head(101, out)


def http_response(
    status: int,
    *,
    headers: HeaderIterable = (),
    body: bytes = b"",
    server_name: str | None,
) -> bytes:
    """A complete HTTP response that ends the connection (rejections, denial responses)."""
    out: list[tuple[bytes, bytes]] = []
    has_length = False
    has_type = False
    for item in headers:
        name, value = check_header(item)
        lower = name.lower()
        if lower in (b"connection", b"transfer-encoding"):
            continue  # the body is sent whole and the connection closes after it
        if lower == b"content-length":
            has_length = True
            value = str(len(body)).encode()
        has_type = has_type or lower == b"content-type"
        out.append((name, value))
    if not has_length:
        out.append((b"Content-Length", str(len(body)).encode()))
    if body and not has_type:
        out.append((b"Content-Type", b"text/plain; charset=utf-8"))
    out.append((b"Connection", b"close"))
    if server_name:
        out.append((b"Server", server_name.encode("latin-1")))
    out.append((b"Date", _date_header()))
    return _head(status, out) + body
