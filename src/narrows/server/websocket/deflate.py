"""permessage-deflate (RFC 7692): negotiation and the per-message (de)compressor.

Negotiation follows websockets' server defaults, chosen for memory: the server's window is
capped at 2**12 bytes, the client's too when it allows us to say so, and ``memLevel=5``.
zlib objects are created lazily on the first compressed message, so an idle connection
costs nothing here. Inflation is bounded by the message size limit (``max_length`` on
``decompress``), so a small compressed frame can never expand past the limit: no zip bombs.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

EXTENSION_NAME: Final = "permessage-deflate"
#: Appended to every compressed message before inflating, stripped after deflating.
_TAIL: Final = b"\x00\x00\xff\xff"
#: Server window and client window we ask for when the client lets us (bits).
DEFAULT_SERVER_MAX_WINDOW_BITS: Final = 12
DEFAULT_CLIENT_MAX_WINDOW_BITS: Final = 12
MEM_LEVEL: Final = 5
#: Messages shorter than this are sent uncompressed (RSV1 clear, allowed by RFC 7692
#: section 6): deflate cannot shrink a few bytes, and skipping it saves CPU per message.
MIN_COMPRESS_SIZE: Final = 64


class NegotiationError(ValueError):
    """An extension offer this server cannot accept as written."""


class DeflateError(Exception):
    """A compressed message is corrupt (close 1007) or inflates past the limit (1009)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """The agreed parameters, from the server's point of view."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    #: The response header value (what the server agreed to), e.g.
    #: ``permessage-deflate; server_max_window_bits=12``.
    response: str = EXTENSION_NAME


def parse_extensions(values: list[str]) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Parse ``Sec-WebSocket-Extensions`` values into ``[(name, [(param, value)])]``.

    Values may come from several header lines; quoted parameter values are unquoted.
    Raises ``NegotiationError`` for malformed syntax.
    """
    offers: list[tuple[str, list[tuple[str, str | None]]]] = []
    for value in values:
        for offer in _split_outside_quotes(value, ","):
            parts = _split_outside_quotes(offer, ";")
            if not parts or not parts[0]:
                if not any(parts):
                    continue  # empty list element (e.g. "a, , b") is allowed
                raise NegotiationError(f"expected an extension name, got {offer.strip()!r}")
            name = parts[0]
            params: list[tuple[str, str | None]] = []
            for part in parts[1:]:
                key, sep, raw = part.partition("=")
                key = key.strip()
                if not key:
                    raise NegotiationError(f"expected a parameter name, got {part!r}")
                if not sep:
                    params.append((key, None))
                    continue
                raw = raw.strip()
                if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                    raw = raw[1:-1].replace('\\"', '"')
                params.append((key, raw))
            offers.append((name, params))
    return offers


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if quoted:
        raise NegotiationError(f"expected a closing quote in {value!r}")
    parts.append("".join(current).strip())
    return parts


def _window_bits(name: str, value: str | None, *, allow_bare: bool) -> int | None:
    if value is None:
        if allow_bare:
            return None
        raise NegotiationError(f"expected a value for {name}, got none")
    if not value.isdigit() or not 8 <= int(value) <= 15:
        raise NegotiationError(f"expected {name} between 8 and 15, got {value!r}")
    return int(value)


def accept_offer(params: list[tuple[str, str | None]]) -> DeflateParams:
    """The server's answer to one ``permessage-deflate`` offer (RFC 7692 section 7.1)."""
    seen: set[str] = set()
    server_nct = client_nct = False
    server_bits: int | None = None
    client_bits: int | None = None
    client_bits_offered = False
    for key, value in params:
        if key in seen:
            raise NegotiationError(f"expected each parameter once, got {key} twice")
        seen.add(key)
        if key in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                raise NegotiationError(f"expected no value for {key}, got {value!r}")
            if key == "server_no_context_takeover":
                server_nct = True
            else:
                client_nct = True
        elif key == "server_max_window_bits":
            server_bits = _window_bits(key, value, allow_bare=False)
        elif key == "client_max_window_bits":
            client_bits_offered = True
            client_bits = _window_bits(key, value, allow_bare=True)
        else:
            raise NegotiationError(f"expected a permessage-deflate parameter, got {key!r}")
    server_bits = min(server_bits or 15, DEFAULT_SERVER_MAX_WINDOW_BITS)
    if server_bits < 9:
        # zlib cannot deflate with an 8-bit raw window (it silently uses 9), which would
        # break the client's limit: decline this offer.
        raise NegotiationError("expected server_max_window_bits >= 9, got 8 (zlib limit)")
    if client_bits_offered:
        client_bits = min(client_bits or 15, DEFAULT_CLIENT_MAX_WINDOW_BITS)
    response = [EXTENSION_NAME]
    if server_nct:
        response.append("server_no_context_takeover")
    if client_nct:
        response.append("client_no_context_takeover")
    response.append(f"server_max_window_bits={server_bits}")
    if client_bits is not None:
        response.append(f"client_max_window_bits={client_bits}")
    return DeflateParams(
        server_no_context_takeover=server_nct,
        client_no_context_takeover=client_nct,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits or 15,
        response="; ".join(response),
    )


def negotiate(header_values: list[str]) -> DeflateParams | None:
    """Pick the first acceptable ``permessage-deflate`` offer, or ``None`` for no compression.

    Malformed or unacceptable offers are declined, not fatal: the connection then runs
    uncompressed, as RFC 7692 allows.
    """
    try:
        offers = parse_extensions(header_values)
    except NegotiationError:
        return None
    for name, params in offers:
        if name.lower() != EXTENSION_NAME:
            continue
        try:
            return accept_offer(params)
        except NegotiationError:
            continue
    return None


class PerMessageDeflate:
    """Compress outgoing and inflate incoming messages with the agreed parameters."""

    __slots__ = ("_compressor", "_decompressor", "params")

    def __init__(self, params: DeflateParams) -> None:
        self.params = params
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None

    def compress(self, data: bytes) -> bytes:
        """One whole message's payload, deflated, without the trailing 00 00 ff ff."""
        compressor = self._compressor
        if compressor is None:
            compressor = zlib.compressobj(
                zlib.Z_DEFAULT_COMPRESSION,
                zlib.DEFLATED,
                -self.params.server_max_window_bits,
                MEM_LEVEL,
            )
            if not self.params.server_no_context_takeover:
                self._compressor = compressor
        out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if out.endswith(_TAIL):
            out = out[:-4]
        return out

    def decompress(self, data: bytes, limit: int, *, final: bool) -> bytes:
        """Inflate one frame of the current message; at most ``limit`` bytes may come out.

        ``limit`` is what remains of the message size limit. Raises ``DeflateError`` with
        1009 when the output would exceed it and 1007 when the data is not valid deflate.
        """
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = zlib.decompressobj(-self.params.client_max_window_bits)
            self._decompressor = decompressor
        if final:
            data += _TAIL
        try:
            out = decompressor.decompress(data, limit + 1)
        except zlib.error as exc:
            raise DeflateError(1007, f"invalid compressed data: {exc}") from exc
        if len(out) > limit or decompressor.unconsumed_tail:
            raise DeflateError(1009, f"message inflates past the {limit}-byte limit")
        if final and self.params.client_no_context_takeover:
            self._decompressor = None  # the next message starts from an empty window
        return out
