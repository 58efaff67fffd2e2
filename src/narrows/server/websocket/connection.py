"""The server side of one RFC 6455 connection, sans-I/O: bytes in, events out.

``Connection.receive_data(data)`` returns the events the bytes completed: a ``str`` for a
text message, ``bytes`` for a binary message, ``Pong`` and ``Closed``. Replies the protocol
owes the peer (pong for ping, the echoed close, the close frame answering a protocol error)
collect in ``Connection.outgoing``; the I/O layer takes them with ``data_to_send()`` (it may
wait while the peer is not reading) and closes the TCP connection once the state is
``CLOSED``. Pongs coalesce: while one is still owed, a newer ping replaces it (RFC 6455
section 5.5.3 allows answering only the most recent ping), so a ping flood from a peer that
does not read costs one pong, not one per ping.

Strictness (every rule answered with a close frame carrying the code, then CLOSED):
unmasked client frames, reserved bits without an extension that defines them, unknown
opcodes, fragmented or >125-byte control frames, continuation without a start and a new
message inside a fragmented one -> 1002; text or close reason that is not UTF-8 (checked
incrementally across fragments) -> 1007; a frame over ``max_frame_size`` or a message over
``max_message_size`` (after inflation), or a message in more than ``max_fragments`` frames
(empty continuation frames carry no bytes, so only their count bounds them) -> 1009;
invalid close codes -> 1002. A fragmented message is assembled in one growing
``bytearray``: a megabyte sent as one-byte fragments costs a megabyte, not a million objects.
"""

from __future__ import annotations

import codecs
import enum
from typing import Final

from narrows.server.websocket.deflate import DeflateError, PerMessageDeflate
from narrows.server.websocket.frames import (
    CONTROL_OPCODES,
    DATA_OPCODES,
    MAX_CONTROL_PAYLOAD,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    CloseCode,
    apply_mask,
    close_payload,
    is_valid_close_code,
    serialize,
    truncate_reason,
)

_utf8_decoder = codecs.getincrementaldecoder("utf-8")


class ConnectionState(enum.Enum):
    CONNECTING = "CONNECTING"  # handshake not answered yet: bytes are held, not parsed
    OPEN = "OPEN"
    CLOSING = "CLOSING"  # we sent a close frame and wait for the peer's
    CLOSED = "CLOSED"  # close handshake done or failed: the TCP connection must close


class InvalidState(RuntimeError):
    """An operation that the connection's state does not allow."""


class Pong:
    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return f"Pong({self.payload!r})"


class Closed:
    """The connection reached CLOSED: the peer's close frame, or a protocol error of its.

    ``code``/``reason`` are the peer's (1005 when its close frame had no code); for a
    protocol error ``error`` is True and they are the code and reason we sent.
    """

    __slots__ = ("code", "error", "reason")

    def __init__(self, code: int, reason: str, *, error: bool = False) -> None:
        self.code = code
        self.reason = reason
        self.error = error

    def __repr__(self) -> str:
        return f"Closed({self.code}, {self.reason!r}, error={self.error})"


Event = str | bytes | Pong | Closed

_MAX_HEADER: Final = 14
#: First byte of a pong frame we send (FIN | OP_PONG): how ``outgoing`` finds an owed pong.
_PONG_FIRST_BYTE: Final = 0x80 | OP_PONG


class _ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Connection:
    """RFC 6455 framing and close handshake for the server end of one connection."""

    __slots__ = (
        "_buffer",
        "_decoder",
        "_frag_buffer",
        "_frag_compressed",
        "_frag_count",
        "_frag_opcode",
        "_frag_size",
        "_small_limit",
        "deflate",
        "max_fragments",
        "max_frame_size",
        "max_message_size",
        "outgoing",
        "state",
    )

    def __init__(
        self,
        *,
        max_message_size: int = 1024 * 1024,
        max_frame_size: int = 1024 * 1024,
        max_fragments: int = 16384,
        deflate: PerMessageDeflate | None = None,
    ) -> None:
        self.state = ConnectionState.CONNECTING
        self.max_message_size = max_message_size
        self.max_frame_size = max_frame_size
        self.max_fragments = max_fragments
        self.deflate = deflate
        #: Frames owed to the peer, oldest first; ``data_to_send()`` takes them.
        self.outgoing: list[bytes] = []
        self._buffer: bytes | bytearray = b""
        self._small_limit = min(max_message_size, max_frame_size, 125)
        self._frag_opcode: int | None = None
        self._frag_compressed = False
        self._frag_buffer = bytearray()
        self._frag_size = 0
        self._frag_count = 0
        self._decoder: codecs.IncrementalDecoder | None = None

    # -- state -------------------------------------------------------------------------------

    def accept(self) -> None:
        """The 101 response went out: start parsing frames."""
        if self.state is not ConnectionState.CONNECTING:
            raise InvalidState(f"expected state CONNECTING to accept, got {self.state.name}")
        self.state = ConnectionState.OPEN

    @property
    def pending_bytes(self) -> int:
        """Bytes received but not yet parsed (held while CONNECTING, or a partial frame)."""
        return len(self._buffer)

    def data_to_send(self) -> bytes:
        """The frames owed to the peer, in order; the connection owes nothing after this."""
        data = b"".join(self.outgoing)
        self.outgoing.clear()
        return data

    # -- sending -----------------------------------------------------------------------------

    def send_text(self, text: str) -> bytes:
        return self._data_frame(OP_TEXT, text.encode("utf-8"))

    def send_bytes(self, data: bytes) -> bytes:
        return self._data_frame(OP_BINARY, bytes(data))

    def _data_frame(self, opcode: int, payload: bytes) -> bytes:
        if self.state is not ConnectionState.OPEN:
            raise InvalidState(f"expected state OPEN to send a message, got {self.state.name}")
        length = len(payload)
        deflate = self.deflate
        if deflate is not None and length >= 64:
            return serialize(opcode, deflate.compress(payload), rsv1=True)
        if length < 126:
            return bytes((0x80 | opcode, length)) + payload
        return serialize(opcode, payload)

    def send_ping(self, payload: bytes = b"") -> bytes:
        if self.state is not ConnectionState.OPEN:
            raise InvalidState(f"expected state OPEN to send a ping, got {self.state.name}")
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError(f"expected a ping payload of at most 125 bytes, got {len(payload)}")
        return serialize(OP_PING, payload)

    def close(self, code: int = 1000, reason: str = "") -> bytes:
        """Start the close handshake: the close frame to send; state becomes CLOSING."""
        if self.state is not ConnectionState.OPEN:
            raise InvalidState(f"expected state OPEN to close, got {self.state.name}")
        if not is_valid_close_code(code):
            raise ValueError(f"expected a close code 1000-1003, 1007-1014 or 3000-4999, got {code}")
        self.state = ConnectionState.CLOSING
        return serialize(OP_CLOSE, close_payload(code, truncate_reason(reason)))

    # -- receiving ---------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer; return the events they complete."""
        state = self.state
        if state is ConnectionState.CONNECTING:
            self._buffer += data
            return []
        if state is ConnectionState.CLOSED:
            return []
        # Fast path: one whole small masked unfragmented text/binary frame, nothing pending.
        if not self._buffer and self._frag_opcode is None and len(data) >= 6:
            first = data[0]
            second = data[1]
            length = second & 0x7F
            if (
                (first == 0x81 or first == 0x82)
                and second & 0x80
                and length <= self._small_limit
                and len(data) == 6 + length
                and state is ConnectionState.OPEN
            ):
                payload = apply_mask(data[6:], data[2:6])
                if first == 0x82:
                    return [payload]
                try:
                    return [payload.decode("utf-8")]
                except UnicodeDecodeError:
                    return [self._fail(1007, "invalid UTF-8 in a text message")]
        return self._receive_frames(data)

    def _receive_frames(self, data: bytes) -> list[Event]:
        buffer = self._buffer
        buf: bytes | bytearray
        if buffer:
            # A bytearray grows in place: a big frame arriving in many reads stays O(n).
            if type(buffer) is bytes:
                buffer = bytearray(buffer)
            buffer += data
            buf = buffer
        else:
            buf = data
        events: list[Event] = []
        pos = 0
        end = len(buf)
        try:
            while self.state is ConnectionState.OPEN or self.state is ConnectionState.CLOSING:
                parsed = self._parse_header(buf, pos, end)
                if parsed is None:
                    break
                first, opcode, length, start = parsed
                if end - start < length:
                    break
                payload = apply_mask(buf[start : start + length], buf[start - 4 : start])
                pos = start + length
                event = self._handle_frame(first, opcode, payload)
                if event is not None:
                    events.append(event)
        except _ProtocolError as exc:
            events.append(self._fail(exc.code, exc.reason))
        except DeflateError as exc:
            events.append(self._fail(exc.code, exc.reason))
        if self.state is ConnectionState.CLOSED or pos >= end:
            self._buffer = b""
        elif pos == 0 and type(buf) is bytearray:
            self._buffer = buf
        else:
            self._buffer = bytearray(buf[pos:])
        return events

    def _parse_header(
        self, buf: bytes | bytearray, pos: int, end: int
    ) -> tuple[int, int, int, int] | None:
        """``(first byte, opcode, payload length, payload start)`` or None if incomplete.

        Every header rule is checked as soon as the header is complete, before waiting for
        the payload, so an oversized or invalid frame is refused without buffering it.
        """
        if end - pos < 2:
            return None
        first = buf[pos]
        second = buf[pos + 1]
        opcode = first & 0x0F
        length = second & 0x7F
        header = 2
        if length == 126:
            if end - pos < 4:
                return None
            length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
            header = 4
        elif length == 127:
            if end - pos < 10:
                return None
            length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            header = 10
            if length >> 63:
                raise _ProtocolError(1002, "expected a 63-bit payload length, got the top bit set")
        self._check_header(first, second, opcode, length)
        if end - pos < header + 4:
            return None
        return first, opcode, length, pos + header + 4

    def _check_header(self, first: int, second: int, opcode: int, length: int) -> None:
        if not second & 0x80:
            raise _ProtocolError(1002, "expected a masked frame from the client, got unmasked")
        if first & 0x30:
            raise _ProtocolError(1002, "expected reserved bits RSV2/RSV3 clear, got them set")
        if first & 0x40 and (self.deflate is None or opcode not in (OP_TEXT, OP_BINARY)):
            what = "no extension negotiated" if self.deflate is None else "a non-first frame"
            raise _ProtocolError(1002, f"expected RSV1 clear, got it set on {what}")
        if opcode in CONTROL_OPCODES:
            if not first & 0x80:
                raise _ProtocolError(1002, "expected a control frame with FIN, got a fragment")
            if length > MAX_CONTROL_PAYLOAD:
                raise _ProtocolError(
                    1002, f"expected a control frame of at most 125 bytes, got {length}"
                )
        elif opcode not in DATA_OPCODES:
            raise _ProtocolError(1002, f"expected a defined opcode, got {opcode:#x}")
        elif length > self.max_frame_size:
            raise _ProtocolError(
                1009, f"frame of {length} bytes exceeds the {self.max_frame_size}-byte limit"
            )
        elif opcode == OP_CONTINUATION and self._frag_count >= self.max_fragments:
            raise _ProtocolError(
                1009, f"message in more than {self.max_fragments} fragments exceeds the limit"
            )
        elif (
            not first & 0x40
            and not (self._frag_compressed and opcode == OP_CONTINUATION)
            and self._frag_size + length > self.max_message_size
        ):
            raise _ProtocolError(
                1009,
                f"message of {self._frag_size + length} bytes exceeds the "
                f"{self.max_message_size}-byte limit",
            )

    def _handle_frame(self, first: int, opcode: int, payload: bytes) -> Event | None:
        if opcode == OP_PING:
            if self.state is ConnectionState.OPEN:
                pong = serialize(OP_PONG, payload)
                outgoing = self.outgoing
                if outgoing and outgoing[-1][0] == _PONG_FIRST_BYTE:
                    outgoing[-1] = pong  # only the latest ping needs an answer
                else:
                    outgoing.append(pong)
            return None
        if opcode == OP_PONG:
            return Pong(payload)
        if opcode == OP_CLOSE:
            return self._handle_close(payload)
        fin = bool(first & 0x80)
        if opcode == OP_CONTINUATION:
            if self._frag_opcode is None:
                raise _ProtocolError(1002, "expected a text or binary frame, got a continuation")
            return self._continue_message(payload, fin)
        if self._frag_opcode is not None:
            raise _ProtocolError(
                1002, "expected a continuation frame, got a new message inside a fragmented one"
            )
        compressed = bool(first & 0x40)
        if fin and not compressed:
            message = payload if opcode == OP_BINARY else self._decode_text(payload)
            return message if self.state is ConnectionState.OPEN else None
        self._frag_opcode = opcode
        self._frag_compressed = compressed
        self._decoder = _utf8_decoder() if opcode == OP_TEXT else None
        return self._continue_message(payload, fin)

    def _continue_message(self, payload: bytes, fin: bool) -> Event | None:
        if self._frag_compressed:
            deflate = self.deflate
            if deflate is None:  # unreachable: RSV1 is refused without deflate
                raise _ProtocolError(1002, "expected no compressed frame without deflate")
            payload = deflate.decompress(
                payload, self.max_message_size - self._frag_size, final=fin
            )
        self._frag_size += len(payload)
        self._frag_count += 1
        if self._frag_size > self.max_message_size:
            raise _ProtocolError(
                1009,
                f"message of {self._frag_size} bytes exceeds the "
                f"{self.max_message_size}-byte limit",
            )
        decoder = self._decoder
        if decoder is not None:
            try:
                decoder.decode(payload, fin)  # validates as it goes; the text is built once
            except UnicodeDecodeError:
                raise _ProtocolError(1007, "invalid UTF-8 in a text message") from None
        buffer = self._frag_buffer
        buffer += payload
        if not fin:
            return None
        message: Event = buffer.decode("utf-8") if decoder is not None else bytes(buffer)
        self._frag_opcode = None
        self._frag_compressed = False
        self._frag_buffer = bytearray()
        self._frag_size = 0
        self._frag_count = 0
        self._decoder = None
        return message if self.state is ConnectionState.OPEN else None

    @staticmethod
    def _decode_text(payload: bytes) -> str:
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            raise _ProtocolError(1007, "invalid UTF-8 in a text message") from None

    def _handle_close(self, payload: bytes) -> Closed:
        if len(payload) == 1:
            raise _ProtocolError(1002, "expected a close code of 2 bytes, got 1 byte")
        if payload:
            code = int.from_bytes(payload[:2], "big")
            if not is_valid_close_code(code):
                raise _ProtocolError(1002, f"expected a valid close code, got {code}")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise _ProtocolError(1007, "invalid UTF-8 in the close reason") from None
        else:
            code, reason = CloseCode.NO_STATUS, ""
        if self.state is ConnectionState.OPEN:
            # Echo the code (RFC 6455 section 5.5.1); no code received -> empty close frame.
            echo = close_payload(code if payload else None)
            self.outgoing.append(serialize(OP_CLOSE, echo))
        self.state = ConnectionState.CLOSED
        return Closed(int(code), reason)

    def _fail(self, code: int, reason: str) -> Closed:
        if self.state is ConnectionState.OPEN:
            payload = close_payload(code, truncate_reason(reason))
            self.outgoing.append(serialize(OP_CLOSE, payload))
        self.state = ConnectionState.CLOSED
        self._buffer = b""
        self._frag_buffer = bytearray()
        return Closed(code, reason, error=True)
