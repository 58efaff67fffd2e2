"""Sans-I/O HTTP/1.x request parser: bytes in, events out.

llhttp (through ``httptools``) does the byte-level work. On top of it this module enforces
what a server on the open internet needs and llhttp leaves to its caller: limits on the
request line (414), the header block and header count (431), exactly one ``Host`` on
HTTP/1.1, Transfer-Encoding codings other than ``chunked`` (501), Content-Length together
with Transfer-Encoding, and HTTP versions other than 1.0/1.1 (505). llhttp itself already
refuses obs-fold, control characters in the head and malformed chunk framing; those are
turned into ``ProtocolError(400, ...)`` events here.

``RequestParser.feed(data)`` returns the events the data completed, in order:
a ``Head`` (a plain tuple), then zero or more ``BodyChunk``, then ``MESSAGE_COMPLETE``; pipelined
requests follow one another in the same list. A ``ProtocolError`` is always the last event:
the parser is ``FAILED`` after it and the connection must answer with its status and close.

Its state is one ``ParserState``. A ``GET`` asking for ``Upgrade: websocket`` (when the
server speaks WebSocket) stops it in ``UPGRADED`` with the bytes that followed in
``trailing``. Any other Upgrade is ignored (RFC 9110 7.8): the request is an ordinary one,
body included. llhttp skips the body of every Upgrade request, so for an ignored one the
parser resumes on a fresh llhttp parser primed with a head of the same framing, which
reads the body; the request is not kept alive.
"""

from __future__ import annotations

import enum
import re
from typing import Final, NamedTuple

import httptools

__all__ = [
    "HEAD_EXPECT_CONTINUE",
    "HEAD_HEADERS",
    "HEAD_HTTP_VERSION",
    "HEAD_KEEP_ALIVE",
    "HEAD_METHOD",
    "HEAD_ROOT_PATH",
    "HEAD_TARGET",
    "HEAD_UPGRADE",
    "MESSAGE_COMPLETE",
    "BodyChunk",
    "Event",
    "Head",
    "MessageComplete",
    "ParserState",
    "ProtocolError",
    "RequestHead",
    "RequestParser",
]


#: A request line and its header block, as the parser emits it: a plain tuple of
#: (method, target, http_version, headers, keep_alive, upgrade, expect_continue, root_path),
#: in the order of ``RequestHead``'s fields. Plain, because a tuple subclass costs about
#: 1,400-1,900 more instructions per request to make and free (callgrind); read its fields
#: by unpacking, by the index constants below, or name them with ``RequestHead._make(head)``.
Head = tuple[str, bytes, str, list[tuple[bytes, bytes]], bool, bytes | None, bool, bytes | None]


class RequestHead(NamedTuple):
    """The fields of a ``Head`` by name (``RequestHead._make(head)``: tests, debugging)."""

    method: str
    target: bytes  # raw request-target: path and query, as sent
    http_version: str
    headers: list[tuple[bytes, bytes]]  # names lower-cased, arrival order
    keep_alive: bool
    upgrade: bytes | None  # lower-cased Upgrade value when the request asks for one
    expect_continue: bool  # HTTP/1.1 with "Expect: 100-continue"
    #: A Daphne-Root-Path value (not in ``headers``): the connection decides whether to
    #: believe it (trusted peers only).
    root_path: bytes | None

    def __repr__(self) -> str:
        return f"RequestHead({self.method} {self.target!r} HTTP/{self.http_version})"


#: Where ``Head``'s fields are (the connection reads ``UPGRADE`` of every head).
HEAD_METHOD: Final = 0
HEAD_TARGET: Final = 1
HEAD_HTTP_VERSION: Final = 2
HEAD_HEADERS: Final = 3
HEAD_KEEP_ALIVE: Final = 4
HEAD_UPGRADE: Final = 5
HEAD_EXPECT_CONTINUE: Final = 6
HEAD_ROOT_PATH: Final = 7
assert RequestHead._fields == (
    "method", "target", "http_version", "headers", "keep_alive", "upgrade",
    "expect_continue", "root_path",
), "HEAD_* index constants out of step with RequestHead"  # fmt: skip


class BodyChunk:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"BodyChunk({self.data!r})"


class MessageComplete:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MESSAGE_COMPLETE"


MESSAGE_COMPLETE: Final = MessageComplete()


class ProtocolError:
    """The request cannot be served: answer ``status`` and close the connection."""

    __slots__ = ("reason", "status")

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason

    def __repr__(self) -> str:
        return f"ProtocolError({self.status}, {self.reason!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProtocolError):
            return NotImplemented
        return (self.status, self.reason) == (other.status, other.reason)

    def __hash__(self) -> int:
        return hash((self.status, self.reason))


Event = Head | BodyChunk | MessageComplete | ProtocolError


class ParserState(enum.Enum):
    __hash__ = object.__hash__  # identity: members are singletons (and C-speed to hash)

    IDLE = "between requests"
    HEAD = "request head arriving"
    BODY = "request body arriving"
    CHUNKED_BODY = "chunked request body arriving"
    UPGRADED = "stopped after an Upgrade request: the rest is another protocol"
    FAILED = "stopped after a ProtocolError"


# Members as module constants: Enum member lookups are slow on Python 3.11.
_IDLE: Final = ParserState.IDLE
_HEAD: Final = ParserState.HEAD
_BODY: Final = ParserState.BODY
_CHUNKED_BODY: Final = ParserState.CHUNKED_BODY
_UPGRADED: Final = ParserState.UPGRADED
_FAILED: Final = ParserState.FAILED
_STOPPED: Final = frozenset({_UPGRADED, _FAILED})


class _Reject(Exception):
    """Raised inside an httptools callback to stop parsing with a precise error."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


_SUPPORTED_VERSIONS: Final = frozenset({"1.0", "1.1"})
# RFC 9110 7.2: Host = uri-host [ ":" port ]; uri-host is an IP literal, or a reg-name of
# unreserved / pct-encoded / sub-delims characters (RFC 3986 3.2.2). May be empty.
_VALID_HOST: Final = re.compile(
    rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(:[0-9]*)?"
).fullmatch
# ``bytes in bytes`` is slow on CPython 3.11 (it formats a TypeError first); a search isn't.
_HAS_FRAGMENT: Final = re.compile(rb"#").search
# Request headers the parser looks at (everything else is only collected).
_HOST: Final = 0
_TRANSFER_ENCODING: Final = 1
_CONTENT_LENGTH: Final = 2
_UPGRADE: Final = 3
_EXPECT: Final = 4
_ROOT_PATH: Final = 5
_SPECIAL_HEADERS: Final = {
    b"host": _HOST,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"content-length": _CONTENT_LENGTH,
    b"upgrade": _UPGRADE,
    b"expect": _EXPECT,
    b"daphne-root-path": _ROOT_PATH,
}
# RFC 9112 5: OWS around a field value is not part of it.
_OWS: Final = b" \t"
_SP: Final = 32
_HTAB: Final = 9
# The field names most requests carry, as browsers, proxies and HTTP clients spell them,
# each mapped to ``name.lower()`` and its ``_SPECIAL_HEADERS`` kind: one lookup in this
# dict costs less than the method call and the second lookup, and most names then need
# no new bytes object. Any other name is lower-cased by the call.
_COMMON_NAMES: Final = (
    "Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Accept-Charset",
    "Connection", "Keep-Alive", "Content-Type", "Content-Length", "Transfer-Encoding",
    "Cookie", "Referer", "Origin", "Authorization", "Cache-Control", "Pragma", "Expect",
    "If-None-Match", "If-Modified-Since", "Range", "TE", "DNT", "Priority",
    "Upgrade", "Upgrade-Insecure-Requests", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
    "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol", "Sec-Fetch-Site",
    "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User", "Sec-CH-UA", "Sec-CH-UA-Mobile",
    "Sec-CH-UA-Platform", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host",
    "X-Forwarded-Port", "X-Real-IP", "X-Requested-With", "X-CSRFToken", "Forwarded", "Via",
    "Daphne-Root-Path",
)  # fmt: skip
_KNOWN_NAMES: Final[dict[bytes, tuple[bytes, int | None]]] = {
    spelling.encode("ascii"): (
        name.lower().encode("ascii"),
        _SPECIAL_HEADERS.get(name.lower().encode("ascii")),
    )
    for name in _COMMON_NAMES
    for spelling in (name, name.lower(), name.upper(), name.title())
}
# Bytes that Daphne 4.2.2+ refuses in field values (CVE-2026-44546): code that splits text
# on Unicode line boundaries (``str.splitlines``) treats them as line breaks. llhttp already
# refuses the four control characters; obs-text such as 0x85 (NEL) it lets through.
_LINE_BOUNDARY: Final = re.compile(rb"[\x0b\x0c\x1c\x1d\x1e\x85]").search
# Methods that need no method-specific check (CONNECT, and "*" targets, do).
_PLAIN_METHODS: Final = frozenset(
    {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS"}
)
_METHOD_NAMES: Final = {m: m.decode("ascii") for m in _PLAIN_METHODS}
# Per-header overhead counted towards the header block size: ": " and CRLF.
_HEADER_OVERHEAD: Final = 4
# A chunk-size line may carry extensions (RFC 9112 7.1.1) that llhttp streams past without a
# limit. Like Node's llhttp binding, allow this many bytes of chunk framing per chunk; large
# reads are fed in slices of this size so the check runs between them.
_MAX_CHUNK_META: Final = 16 * 1024
# What llhttp raises from ``feed_data`` (HttpParserUpgrade is not an HttpParserError).
_PARSER_ERRORS: Final = (httptools.HttpParserError, httptools.HttpParserUpgrade)


# Request targets already found in origin form without a fragment (what nearly every
# request sends): a set lookup instead of the checks. Bounded like scope's path cache.
_PLAIN_TARGETS: Final[set[bytes]] = set()
_PLAIN_TARGETS_LIMIT: Final = 1024
_PLAIN_TARGET_LENGTH_LIMIT: Final = 256


def _is_plain_target(url: bytes) -> bool:
    """Whether ``url`` is in origin form ("/...") without a "#"; remembered if so."""
    if url[:1] != b"/" or url.find(b"#") >= 0:
        return False
    if len(url) <= _PLAIN_TARGET_LENGTH_LIMIT:
        if len(_PLAIN_TARGETS) >= _PLAIN_TARGETS_LIMIT:
            _PLAIN_TARGETS.clear()
        _PLAIN_TARGETS.add(url)
    return True


class RequestParser:
    """Feed bytes with ``feed``; read events from its return value."""

    __slots__ = (
        "_ascii_data",
        "_ascii_head",
        "_body_bytes",
        "_chunk_count",
        "_chunk_meta",
        "_content_length",
        "_events",
        "_expect",
        "_first_data",
        "_head_bytes",
        "_header_bytes",
        "_headers",
        "_host",
        "_host_count",
        "_ignored_upgrade",
        "_max_count",
        "_max_head",
        "_max_line",
        "_messages",
        "_parser",
        "_root_path",
        "_specials",
        "_trailer_count",
        "_transfer_encoding",
        "_upgrade",
        "_url",
        "_valid_host",
        "_websocket",
        "state",
        "trailing",
    )

    def __init__(
        self,
        *,
        max_header_size: int = 64 * 1024,
        max_header_count: int = 100,
        max_request_line: int = 8 * 1024,
        websocket: bool = True,
    ) -> None:
        self._max_head = max_header_size
        self._max_count = max_header_count
        self._max_line = max_request_line
        self._valid_host: bytes | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._websocket = websocket  # whether "Upgrade: websocket" stops the parser
        self._events: list[Event] = []
        self.state = _IDLE
        #: The data the message in progress began with, until its head is complete.
        self._first_data: bytes | None = None
        #: Whether the data being fed is all ASCII (not looked at in a body: False), and
        #: whether every byte of the head in progress so far was: then none of its field
        #: values holds obs-text, and ``on_header`` need not look at each one.
        self._ascii_data = False
        self._ascii_head = False
        #: The framing head an ignored Upgrade's body is read with, once llhttp stops.
        self._ignored_upgrade: bytes | None = None
        # Chunked-body accounting (see ``_MAX_CHUNK_META``); ``_messages`` counts request
        # heads so a slice that began in another message is not charged to this one.
        self._messages = 0
        self._body_bytes = 0
        self._chunk_meta = 0
        self._chunk_count = 0
        # Per-message fields (reset by ``on_message_begin``).
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = self._header_bytes = self._host_count = self._trailer_count = 0
        #: The last Host value: read only when the message has exactly one.
        self._host = b""
        self._reset_specials()
        self.state = _IDLE
        #: In UPGRADED: the bytes that followed the request head (the new protocol's).
        self.trailing = b""

    @property
    def dead(self) -> bool:
        return self.state is _FAILED

    @property
    def upgraded(self) -> bool:
        return self.state is _UPGRADED

    @property
    def in_head(self) -> bool:
        """A request head has begun arriving but is not complete yet."""
        return self.state is _HEAD

    # -- public API --------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        if self.state in _STOPPED:
            return []
        events = self._events = []
        if self.state is _IDLE:
            # At a message boundary, the next message begins this data (after any empty
            # lines): ``on_headers_complete`` looks for its version here.
            self._first_data = data
        if len(data) <= _MAX_CHUNK_META:
            if self.state is _CHUNKED_BODY:
                self._feed(data)
            else:
                # The usual read (one or more whole small requests): llhttp straight away;
                # no chunked body was in progress, so there is no chunk framing to count.
                self._note_ascii(data)
                try:
                    self._parser.feed_data(data)
                except _PARSER_ERRORS as exc:
                    self._on_parser_error(data, exc)
                else:
                    if self.state is _HEAD:
                        self._count_head_bytes(len(data))
            return events
        for start in range(0, len(data), _MAX_CHUNK_META):
            end = start + _MAX_CHUNK_META
            self._feed(data[start:end])
            if self.state is _UPGRADED:
                self.trailing += data[end:]
            if self.state in _STOPPED:
                break
        return events

    def _feed(self, data: bytes) -> None:
        messages, body_bytes, header_bytes = self._messages, self._body_bytes, self._header_bytes
        self._note_ascii(data)
        try:
            self._parser.feed_data(data)
        except _PARSER_ERRORS as exc:
            self._on_parser_error(data, exc)
        else:
            state = self.state
            if state is _HEAD:
                self._count_head_bytes(len(data))
            elif state is _CHUNKED_BODY and self._messages == messages:
                # Bytes that were neither body nor trailer fields are chunk framing.
                framing = len(data) - (self._body_bytes - body_bytes)
                self._chunk_meta += framing - (self._header_bytes - header_bytes)
                if self._chunk_meta > _MAX_CHUNK_META * (self._chunk_count + 1):
                    self._fail(
                        400, f"Chunk extensions too long (limit {_MAX_CHUNK_META} bytes per chunk)"
                    )

    def _note_ascii(self, data: bytes) -> None:
        """Before llhttp parses ``data``: is it all ASCII? One check per read instead of one
        per field value. In a body it is not looked at: a head that follows the body in the
        same data has its values checked one by one."""
        state = self.state
        ascii = (state is _IDLE or state is _HEAD) and data.isascii()
        self._ascii_data = ascii
        self._ascii_head = self._ascii_head and ascii  # a head in progress spans reads

    def _count_head_bytes(self, size: int) -> None:
        """A head still arriving: bound it by bytes (its fields are checked once complete)."""
        self._head_bytes += size
        if self._head_bytes > self._max_head + self._max_line:
            self._fail(431, "Request header block too large")

    def _on_parser_error(self, data: bytes, exc: Exception) -> None:
        if isinstance(exc, httptools.HttpParserUpgrade):
            self._on_upgrade(data, exc)
        elif isinstance(exc, httptools.HttpParserCallbackError):
            cause = exc.__context__ or exc.__cause__
            if isinstance(cause, _Reject):
                self._fail(cause.status, cause.reason)
            else:  # an unexpected error in a callback is a bug here: surface it
                raise  # the exception being handled by ``feed``
        elif isinstance(exc, httptools.HttpParserInvalidURLError):
            self._fail(400, f"Invalid request target: {_describe(exc)}")
        elif isinstance(exc, httptools.HttpParserInvalidMethodError):
            self._fail(400, f"Invalid request method: {_describe(exc)}")
        else:
            self._fail(400, f"Invalid HTTP request: {_describe(exc)}")

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        """A request head begins: its per-message fields start empty."""
        self.state = _HEAD
        self._ascii_head = self._ascii_data  # the head's bytes so far are this data's
        self._url = b""
        self._headers = []
        self._head_bytes = self._header_bytes = self._host_count = self._trailer_count = 0
        if self._specials:
            self._reset_specials()

    def _reset_specials(self) -> None:
        """The fields of the headers most requests do not send (``_special_header``)."""
        self._specials = False
        self._transfer_encoding: list[bytes] | None = None  # made when one arrives
        self._content_length: bytes | None = None
        self._upgrade: bytes | None = None
        self._expect = False
        self._root_path: bytes | None = None

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._max_line:
            raise _Reject(414, f"Request line too long (limit {self._max_line} bytes)")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.state is not _HEAD:
            self._on_trailer(name, value)
            return
        # Limits are checked once the head is complete (``on_headers_complete``); a head
        # still arriving is bounded by ``feed``'s byte count.
        self._header_bytes += len(name) + len(value)
        # OWS off both ends before any other check (llhttp keeps trailing OWS); most
        # values have none, and testing the end bytes costs less than calling strip().
        if value and (
            value[-1] == _SP or value[-1] == _HTAB or value[0] == _SP or value[0] == _HTAB
        ):
            value = value.strip(_OWS)
        if not (self._ascii_head or value.isascii()):
            self._check_obs_text(name, value)
        known = _KNOWN_NAMES.get(name)
        if known is None:
            name = name.lower()
            special = _SPECIAL_HEADERS.get(name)
        else:
            name, special = known
        if special is None:
            self._headers.append((name, value))
        elif special == _HOST:  # in every HTTP/1.1 request: handled here without a call
            self._headers.append((name, value))
            self._host_count += 1
            self._host = value
        elif special == _ROOT_PATH:  # for the server, not the application
            self._specials = True
            self._root_path = value
        else:
            self._headers.append((name, value))
            self._special_header(special, value)

    @staticmethod
    def _check_obs_text(name: bytes, value: bytes) -> None:
        found = _LINE_BOUNDARY(value)
        if found:
            raise _Reject(
                400,
                f"Expected a header value without line-boundary bytes, got {found.group()!r} "
                f"in {name[:100].decode('latin-1')}",
            )

    def _host_is_valid(self) -> bool:
        """Check the Host value; the last valid one is remembered (clients repeat it)."""
        host = self._host
        if _VALID_HOST(host):
            self._valid_host = host
            return True
        return False

    def _on_trailer(self, name: bytes, value: bytes) -> None:
        """A chunked trailer field: counted against the limits, then dropped."""
        self._header_bytes += len(name) + len(value) + _HEADER_OVERHEAD
        self._trailer_count += 1
        self._check_limits(self._header_bytes, self._trailer_count)

    def _check_limits(self, size: int, count: int) -> None:
        if count > self._max_count:
            raise _Reject(431, f"Too many request headers (limit {self._max_count})")
        if size > self._max_head:
            raise _Reject(431, f"Request header block too large (limit {self._max_head} bytes)")

    def _special_header(self, kind: int, value: bytes) -> None:
        """A field the parser looks at, other than Host and Daphne-Root-Path (``on_header``
        handles those)."""
        self._specials = True  # reset when the next message begins
        if kind == _TRANSFER_ENCODING:
            if self._transfer_encoding is None:
                self._transfer_encoding = []
            self._transfer_encoding.append(value)
        elif kind == _CONTENT_LENGTH:
            self._content_length = value
        elif kind == _UPGRADE:
            self._upgrade = value.lower()
        elif value.lower() == b"100-continue":  # _EXPECT
            self._expect = True

    def on_headers_complete(self) -> None:
        headers = self._headers
        size = self._header_bytes + _HEADER_OVERHEAD * len(headers)
        if size > self._max_head or len(headers) > self._max_count:
            self._check_limits(size, len(headers))
        self._header_bytes = 0  # trailer fields, if any, count from zero
        parser = self._parser
        method = parser.get_method()
        url = self._url
        # httptools formats the version string on every ``get_http_version()`` call, which
        # costs more than llhttp's whole parse of a small request. A head that began a feed
        # has its version right after "METHOD SP target" in that data (unless the data
        # began with empty lines: then that slice is no version at all).
        first, self._first_data = self._first_data, None
        at = len(method) + len(url) + 1
        if first is not None and first[at : at + 10] == b" HTTP/1.1\r":
            version = "1.1"
        else:
            version = parser.get_http_version()
        method_name = _METHOD_NAMES.get(method)
        if (
            version != "1.1"
            or self._host_count != 1
            or self._transfer_encoding
            or method_name is None
            or (self._host != self._valid_host and not self._host_is_valid())
            or (url not in _PLAIN_TARGETS and not _is_plain_target(url))
        ):
            self._check_head(version, method)
        self._messages += 1
        keep_alive = parser.should_keep_alive()
        if self._specials:
            upgrade, keep_alive, expect_continue = self._special_fields(method, version, keep_alive)
        else:
            self.state = _BODY
            upgrade, expect_continue = None, False
        self._events.append(
            (
                method_name or method.decode("ascii"),
                url,
                version,
                headers,
                keep_alive,
                upgrade,
                expect_continue,
                self._root_path,
            )
        )

    def _special_fields(
        self, method: bytes, version: str, keep_alive: bool
    ) -> tuple[bytes | None, bool, bool]:
        """(upgrade, keep_alive, expect_continue) of a head with special headers; the state
        its body is read in."""
        if self._transfer_encoding:
            self.state = _CHUNKED_BODY
            self._chunk_meta = self._chunk_count = 0
        else:
            self.state = _BODY
        upgrade = self._upgrade
        if upgrade is not None:
            if not self._parser.should_upgrade():
                upgrade = None
            elif not (upgrade == b"websocket" and method == b"GET" and self._websocket):
                # Served as an ordinary request, body included; then the connection closes:
                # the client may well have meant the bytes after it for another protocol.
                self._ignore_upgrade()
                upgrade, keep_alive = None, False
        return upgrade, keep_alive, self._expect and version == "1.1"  # RFC 9110 10.1.1

    def _ignore_upgrade(self) -> None:
        """An Upgrade narrows does not speak: remember how to read the body llhttp skips."""
        if self._transfer_encoding:
            self._ignored_upgrade = b"Transfer-Encoding: chunked\r\n"
        elif self._content_length is not None and self._content_length != b"0":
            self._ignored_upgrade = b"Content-Length: " + self._content_length + b"\r\n"
        else:
            self._ignored_upgrade = b""  # no body: the next bytes are the next request

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        self._events.append(BodyChunk(body))

    def on_chunk_header(self) -> None:
        self._chunk_count += 1

    def on_message_complete(self) -> None:
        if self._ignored_upgrade:  # llhttp skipped this body: it is read after the upgrade
            return
        self.state = _IDLE
        self._events.append(MESSAGE_COMPLETE)

    # -- checks llhttp leaves to us --------------------------------------------------

    def _check_head(self, version: str, method: bytes) -> None:
        """The slow path: every check, for any request the fast test did not clear."""
        if version not in _SUPPORTED_VERSIONS:
            raise _Reject(505, f"Expected HTTP version 1.0 or 1.1, got {version}")
        if version == "1.1" and self._host_count != 1:
            got = "none" if self._host_count == 0 else f"{self._host_count}"
            raise _Reject(400, f"Expected exactly one Host header on HTTP/1.1, got {got}")
        if method == b"CONNECT":
            # An ASGI application cannot be a tunnel; a 2xx here would make a front proxy
            # treat the rest of the connection as one (RFC 9110 15.6.2).
            raise _Reject(501, "Expected a method other than CONNECT: this is not a proxy")
        if _HAS_FRAGMENT(self._url):
            raise _Reject(400, "Expected a request target without a fragment, got '#'")
        if self._url == b"*" and method != b"OPTIONS":
            method_name = method.decode("latin-1")
            raise _Reject(400, f"Expected asterisk-form only with OPTIONS, got {method_name}")
        for name, value in self._headers:
            if name == b"host" and not _VALID_HOST(value):
                raise _Reject(400, f"Expected a Host of host[:port], got {value[:100]!r}")
        if self._transfer_encoding:
            if self._content_length:
                raise _Reject(400, "Content-Length and Transfer-Encoding are both present")
            codings = [
                c.strip().lower() for value in self._transfer_encoding for c in value.split(b",")
            ]
            unsupported = [c for c in codings if c != b"chunked"]
            if unsupported:
                got = unsupported[0].decode("latin-1")
                raise _Reject(501, f'Expected Transfer-Encoding "chunked", got "{got}"')
            if len(codings) != 1:
                raise _Reject(400, "Transfer-Encoding chunked applied more than once")

    # -- helpers ---------------------------------------------------------------------

    def _on_upgrade(self, data: bytes, exc: httptools.HttpParserUpgrade) -> None:
        # llhttp stops after the head of an Upgrade request; its offset is the first byte
        # that belongs to the new protocol (or, for an ignored Upgrade, to the body).
        try:
            offset = int(exc.args[0])
        except (IndexError, TypeError, ValueError):
            offset = len(data)
        framing = self._ignored_upgrade
        if framing is None:
            self.state = _UPGRADED
            self.trailing = data[offset:]
            return
        self._ignored_upgrade = None
        self._parser = httptools.HttpRequestParser(self)
        if framing:
            self._prime(framing)
        else:
            self.state = _IDLE
        rest = data[offset:]
        if rest:
            self._feed(rest)

    def _prime(self, framing: bytes) -> None:
        """Put the fresh llhttp parser where the skipped body begins: after a head that
        frames a body the same way. What that head produces is not this request's."""
        events, self._events = self._events, []
        messages = self._messages
        self._parser.feed_data(b"POST / HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n")
        self._events = events
        self._messages = messages

    def _fail(self, status: int, reason: str) -> None:
        self.state = _FAILED
        self._events.append(ProtocolError(status, reason))


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
