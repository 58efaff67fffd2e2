"""Request targets, addresses and the Daphne-Root-Path header, turned into ASGI scope values."""

from __future__ import annotations

import asyncio
from typing import Any, Final
from urllib.parse import unquote, unquote_to_bytes

import httptools

from narrows.types import Address

__all__ = [
    "addresses",
    "decode_path",
    "decode_root_path",
    "path_parts",
    "peer_name",
    "split_target",
]


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """(raw path, query string) of a request target in origin, absolute or asterisk form."""
    if target[:1] == b"/":  # origin form: nearly every request
        raw_path, _, query = target.partition(b"?")
        return raw_path, query
    if target == b"*":
        return b"*", b""
    try:
        url = httptools.parse_url(target)
    except httptools.HttpParserInvalidURLError:
        return target, b""
    # httptools declares URL.path and .query as bytes, but they are None when absent (and
    # compiled code would check the declared type): read them untyped.
    parsed: Any = url
    return parsed.path or b"/", parsed.query or b""


# Request targets already split and decoded: a site serves the same few paths over and
# over. Bounded in count and in target length (a client may send any number of distinct
# ones); emptied when full, so it follows what is requested now.
_PATHS: Final[dict[bytes, tuple[str, bytes, bytes]]] = {}
_PATHS_LIMIT: Final = 1024
_PATH_LENGTH_LIMIT: Final = 256


def path_parts(target: bytes) -> tuple[str, bytes, bytes]:
    """The scope's ``path``, ``raw_path`` and ``query_string`` for a request target."""
    parts = _PATHS.get(target)
    if parts is None:
        raw_path, query = split_target(target)
        parts = (decode_path(raw_path), raw_path, query)
        if len(target) <= _PATH_LENGTH_LIMIT:
            if len(_PATHS) >= _PATHS_LIMIT:
                _PATHS.clear()
            _PATHS[target] = parts
    return parts


def decode_path(raw_path: bytes) -> str:
    """The scope's ``path``: percent-decoded as UTF-8."""
    path = raw_path.decode("latin-1")
    return unquote(path) if "%" in path else path


def decode_root_path(value: bytes) -> str:
    """Daphne-Root-Path is URL-encoded (like the path it prefixes)."""
    return unquote_to_bytes(value).decode("utf-8", "replace")


def addresses(
    transport: asyncio.BaseTransport,
) -> tuple[Address | None, Address | tuple[str, None] | None]:
    """The scope's ``client`` and ``server`` for a transport (unix sockets: None, (path, None))."""
    peer = transport.get_extra_info("peername")
    sock = transport.get_extra_info("sockname")
    client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple | list) and peer else None
    server: Address | tuple[str, None] | None
    if isinstance(sock, tuple | list) and sock:
        server = (str(sock[0]), int(sock[1]))
    elif isinstance(sock, str) and sock:
        server = (sock, None)
    else:
        server = None
    return client, server


def peer_name(client: Address | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unix socket peer"
