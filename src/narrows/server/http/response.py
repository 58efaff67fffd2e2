"""HTTP/1.x response serialisation: status lines, head, framing, chunks, trailers.

Pure functions over bytes; the ASGI cycle (``cycle.py``) decides when to call them. Status
lines are built once per (version, status) and cached; the ``Date`` line comes from
``date.DateHeader``. Header names and values from the application are checked: a value with
CR, LF or NUL (response splitting) or a name that is not an RFC 9110 token raises
``InvalidResponse``, which the cycle answers with a 500.
"""

from __future__ import annotations

import enum
import http
import re
from collections.abc import Iterable
from typing import Any, Final

__all__ = [
    "CHUNKED",
    "CLOSE",
    "LAST_CHUNK",
    "LENGTH",
    "NO_BODY",
    "Framing",
    "InvalidResponse",
    "ResponseHead",
    "check_header",
    "encode_chunk",
    "encode_head",
    "encode_trailers",
    "error_response",
    "status_line",
]

LAST_CHUNK: Final = b"0\r\n\r\n"

_BAD_VALUE: Final = re.compile(rb"[\x00\r\n]").search
_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
# The value check by ``bytes.translate``, a table lookup per byte in C: over twice as fast
# as the regex on a value that varies per response (a session cookie), which neither cache
# below can answer. (tests/server/http/test_response.py holds it to the regex.)
_BAD_BYTES: Final = b"\x00\r\n"
_STATUS_LINES_11: Final[dict[int, bytes]] = {}
_STATUS_LINES_10: Final[dict[int, bytes]] = {}


class InvalidResponse(ValueError):
    """The application's response cannot be put on the wire as given."""


class Framing(enum.Enum):
    """How the response body is delimited on the wire."""

    NO_BODY = "no body"  # HEAD, 1xx, 204, 304
    LENGTH = "content-length"
    CHUNKED = "chunked"
    CLOSE = "until close"  # HTTP/1.0 streaming: the end of the body is the end of the stream


# Framing members as module constants: Enum member lookups are slow on Python 3.11.
NO_BODY: Final = Framing.NO_BODY
LENGTH: Final = Framing.LENGTH
CHUNKED: Final = Framing.CHUNKED
CLOSE: Final = Framing.CLOSE

#: (head bytes, framing, keep-alive after this response, content length or None)
ResponseHead = tuple[bytes, Framing, bool, int | None]


_CONTENT_LENGTH_LINES: Final[dict[int, bytes]] = {}
_CONTENT_LENGTH_CACHE_LIMIT: Final = 2048


def _content_length_line(length: int) -> bytes:
    """b"content-length: N\\r\\n", remembered for small N (bytes % formatting is slow)."""
    line = b"content-length: %d\r\n" % length
    if length < _CONTENT_LENGTH_CACHE_LIMIT:
        _CONTENT_LENGTH_LINES[length] = line
    return line


def status_line(http11: bool, status: int) -> bytes:
    """b"HTTP/1.1 200 OK\\r\\n", built once per version and status."""
    lines = _STATUS_LINES_11 if http11 else _STATUS_LINES_10
    line = lines.get(status)
    if line is None:
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        version = b"HTTP/1.1 " if http11 else b"HTTP/1.0 "
        line = lines[status] = version + f"{status} {phrase}".rstrip().encode("ascii") + b"\r\n"
    return line


def _has_no_body(status: int, method_head: bool) -> bool:
    return method_head or status < 200 or status == 204 or status == 304


# What ``encode_head`` must notice about a header (its kind, a bit), by lower-cased name.
_ORDINARY: Final = 0
_CONTENT_LENGTH: Final = 1
_TRANSFER_ENCODING: Final = 2
_CONNECTION: Final = 4
_DATE: Final = 8
_SERVER: Final = 16
_KINDS_BY_LOWER_NAME: Final = {
    b"content-length": _CONTENT_LENGTH,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"connection": _CONNECTION,
    b"date": _DATE,
    b"server": _SERVER,
}
#: Kinds of the lines the server adds itself when the application gives none.
_SERVER_ADDED: Final = _CONNECTION | _DATE | _SERVER
#: (line on the wire, kind, detail): detail is the Content-Length value, or for Connection
#: 1 if it says "close"; else 0.
_Line = tuple[bytes, int, int]
# Header pairs already checked, with their line: most responses repeat the same few
# (content types, cache policies, small lengths), and one dict lookup replaces the checks,
# the classification and the formatting. Bounded, and emptied when full: pairs that never
# repeat (a session cookie) would otherwise fill it for good and keep later ones out.
_LINES: Final[dict[object, _Line]] = {}
_LINES_LIMIT: Final = 4096


def _has_bad_byte(value: object) -> bool:
    """``value`` holds CR, LF or NUL (what ``_BAD_VALUE`` finds); ``InvalidResponse`` if it
    is not bytes-like."""
    if type(value) is bytes:
        return len(value.translate(None, _BAD_BYTES)) != len(value)
    try:
        # On CPython 3.11 ``bytes in bytes`` first tries the operand as an int and formats a
        # TypeError, which costs more than this whole search.
        return _BAD_VALUE(value) is not None  # type: ignore[call-overload]
    except TypeError as exc:
        raise InvalidResponse(f"Expected headers as (bytes, bytes) pairs: {exc}") from None


def _header_line(item: object) -> _Line:
    """Check one (name, value) pair from the application and put it in wire form."""
    pair: Any = item
    try:
        name, value = pair
    except (TypeError, ValueError) as exc:
        raise InvalidResponse(f"Expected headers as (bytes, bytes) pairs: {exc}") from None
    if not isinstance(name, bytes):
        raise InvalidResponse(f"Expected header name as bytes, got {type(name).__name__}")
    if not _TOKEN(name):
        raise InvalidResponse(f"Invalid response header name {name!r}")
    if _has_bad_byte(value):
        raise InvalidResponse(f"Response header {name!r} value contains CR, LF or NUL")
    kind = _KINDS_BY_LOWER_NAME.get(name.lower(), _ORDINARY)
    detail = 0
    if kind == _CONTENT_LENGTH:
        detail = _parse_content_length(bytes(value))
    elif kind == _CONNECTION:
        detail = bytes(value).lower().find(b"close") >= 0
    entry = (b"".join((name, b": ", value, b"\r\n")), kind, detail)
    if type(item) is tuple and type(name) is type(value) is bytes:
        if len(_LINES) >= _LINES_LIMIT:
            _LINES.clear()
        _LINES[item] = entry  # exactly bytes: an equal key is the same line on the wire
    return entry


#: What ``_compose_head`` decides, apart from the Date line: the head's bytes before the
#: Date line and after it, whether the server's Date line goes between (the application
#: gave none), the framing, keep-alive after this response, and the content length.
_HeadParts = tuple[bytes, bytes, bool, Framing, bool, int | None]
# Whole heads already composed, by everything that decides them but the date. An
# application answers most requests with the same few heads, and one lookup here replaces
# the loop over its headers. Bounded by count and size; emptied when full, so heads that
# keep changing (a session cookie) cost one insertion each and evict nothing for long.
_HEADS: Final[dict[object, _HeadParts]] = {}
_HEADS_LIMIT: Final = 512
_HEAD_SIZE_LIMIT: Final = 2048


def encode_head(
    status: int,
    headers: Iterable[object],
    *,
    http11: bool,
    keep_alive: bool,
    method_head: bool,
    body_length: int | None,
    want_trailers: bool,
    date_line: bytes,
    server_line: bytes,
) -> ResponseHead:
    """Serialise a response head and decide its framing.

    ``headers`` is whatever the application sent (typed ``object`` so that compiled code
    checks nothing before these checks do): each pair is checked here.

    ``body_length`` is the whole body's size when the application sent it in one message
    (then a Content-Length is added unless it gave one), or None while it streams.

    The result is ``_compose_head``'s, remembered in ``_HEADS`` for a list or tuple of
    hashable pairs: a key equal to one composed before stands for headers that passed the
    same checks and put the same bytes on the wire.
    """
    key: object = None
    parts: _HeadParts | None = None
    if (type(headers) is list or type(headers) is tuple) and 100 <= status <= 999:
        # The scalars in one int: one hash instead of six.
        shape = (
            status
            | (1024 if http11 else 0)
            | (2048 if keep_alive else 0)
            | (4096 if method_head else 0)
            | (8192 if want_trailers else 0)
            | (0 if body_length is None else (body_length + 1) << 14)
        )
        try:
            key = (shape, server_line, tuple(headers))
            parts = _HEADS.get(key)
        except (TypeError, ValueError):  # an unhashable pair (a list, a writable memoryview)
            key = None
    if parts is None:
        parts = _compose_head(
            status, headers, http11, keep_alive, method_head, body_length, want_trailers,
            server_line,
        )  # fmt: skip
        if key is not None and len(parts[0]) + len(parts[1]) <= _HEAD_SIZE_LIMIT:
            if len(_HEADS) >= _HEADS_LIMIT:
                _HEADS.clear()
            _HEADS[key] = parts
    before, after, dated, framing, keep_alive, content_length = parts
    head = b"".join((before, date_line, after)) if dated else before + after
    return head, framing, keep_alive, content_length


def _compose_head(
    status: int,
    headers: Iterable[object],
    http11: bool,
    keep_alive: bool,
    method_head: bool,
    body_length: int | None,
    want_trailers: bool,
    server_line: bytes,
) -> _HeadParts:
    """Check the application's headers, decide the framing and write the head (but the
    Date line, which changes every second: ``encode_head`` puts it in)."""
    first = (_STATUS_LINES_11 if http11 else _STATUS_LINES_10).get(status)
    parts = [first or status_line(http11, status)]
    content_length: int | None = None
    given = 0  # the kinds of the headers the application gave, or-ed
    try:
        for item in headers:
            try:
                entry = _LINES.get(item)
            except TypeError:  # an unhashable pair (a list): checked every time
                entry = None
            line, kind, detail = entry or _header_line(item)
            parts.append(line)
            if kind:
                given |= kind
                if kind == _CONTENT_LENGTH:
                    content_length = detail
                elif detail:  # Connection: close
                    keep_alive = False
    except TypeError as exc:  # ``headers`` is not iterable
        raise InvalidResponse(f"Expected headers as (bytes, bytes) pairs: {exc}") from None
    if (
        body_length is not None
        and (content_length is None or content_length == body_length)
        and not given & _TRANSFER_ENCODING
        and not method_head
        and not want_trailers
        and status >= 200
        and status != 204
        and status != 304
    ):  # the usual case: one body message, framed by its Content-Length (ours if none given)
        framing = LENGTH
        if content_length is None:
            content_length = body_length
            parts.append(
                _CONTENT_LENGTH_LINES.get(body_length) or _content_length_line(body_length)
            )
    else:
        framing, content_length, keep_alive = _frame(
            parts, status, given, keep_alive, method_head, http11, content_length, body_length,
            want_trailers,
        )  # fmt: skip
    after = _end_head(given, keep_alive, http11, server_line)
    return b"".join(parts), after, not given & _DATE, framing, keep_alive, content_length


def _frame(
    parts: list[bytes],
    status: int,
    given: int,
    keep_alive: bool,
    method_head: bool,
    http11: bool,
    content_length: int | None,
    body_length: int | None,
    want_trailers: bool,
) -> tuple[Framing, int | None, bool]:
    """(framing, content length, keep-alive) by the full rules, adding the framing line."""
    chunked = bool(given & _TRANSFER_ENCODING)
    framing = _framing(
        status, method_head, http11, chunked, content_length, body_length, want_trailers
    )
    if framing is LENGTH and content_length is None:
        content_length = body_length
        parts.append(b"content-length: %d\r\n" % (body_length or 0))
    elif framing is CHUNKED and not chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
    elif framing is CLOSE:
        keep_alive = False
    return framing, content_length, keep_alive


def _end_head(given: int, keep_alive: bool, http11: bool, server_line: bytes) -> bytes:
    """What follows the Date line: the lines the server adds unless the application gave
    them, and the blank line."""
    parts = []
    if not given & _SERVER:
        parts.append(server_line)
    if not given & _CONNECTION:
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        elif not http11:
            parts.append(b"connection: keep-alive\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def _framing(
    status: int,
    method_head: bool,
    http11: bool,
    chunked: bool,
    content_length: int | None,
    body_length: int | None,
    want_trailers: bool,
) -> Framing:
    if _has_no_body(status, method_head):
        return NO_BODY
    if chunked:
        if not http11:
            raise InvalidResponse("Transfer-Encoding set on a response to an HTTP/1.0 request")
        return CHUNKED
    if want_trailers and http11 and content_length is None:
        return CHUNKED
    if content_length is not None or body_length is not None:
        return LENGTH
    return CHUNKED if http11 else CLOSE


def check_header(item: object) -> tuple[bytes, bytes]:
    """``item`` if it can go on the wire as a response header, else ``InvalidResponse``
    (also used for the WebSocket handshake's responses)."""
    pair: Any = item
    try:
        name, value = pair
    except (TypeError, ValueError):
        raise InvalidResponse(f"Expected a (name, value) header pair, got {item!r}") from None
    if not isinstance(name, bytes) or not isinstance(value, bytes):
        raise InvalidResponse(
            f"Expected header name and value as bytes, got "
            f"{type(name).__name__} and {type(value).__name__}"
        )
    if not _TOKEN(name):
        raise InvalidResponse(f"Invalid response header name {name!r}")
    if _has_bad_byte(value):
        raise InvalidResponse(f"Response header {name!r} value contains CR, LF or NUL")
    return name, value


def _parse_content_length(value: bytes) -> int:
    value = value.strip()
    if not value.isdigit():
        raise InvalidResponse(f"Expected Content-Length as digits, got {value!r}")
    return int(value)


def encode_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def encode_trailers(headers: Iterable[object]) -> bytes:
    """The last chunk followed by trailer fields and the final CRLF."""
    parts = [b"0\r\n"]
    for item in headers:
        name, value = check_header(item)
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def error_response(
    status: int, message: str, *, date_line: bytes, server_line: bytes, keep_alive: bool = False
) -> bytes:
    """A complete plain-text response the server itself answers with (400, 500, 503...)."""
    body = message.encode("utf-8", "replace") + b"\n"
    head = [
        status_line(True, status),
        b"content-type: text/plain; charset=utf-8\r\n",
        b"content-length: %d\r\n" % len(body),
        date_line,
        server_line,
        b"" if keep_alive else b"connection: close\r\n",
        b"\r\n",
    ]
    return b"".join(head) + body
