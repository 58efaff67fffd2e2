"""The server side of one HTTP/1.1 connection, sans-I/O: inputs in, actions out.

``HTTPConnection`` owns the parser, the order of pipelined requests, protocol errors, the
WebSocket hand-off and flow control. The I/O layer (``protocol.py``) feeds it what happens
(bytes read, a response complete, the transport paused or resumed, a timer fired) and
carries out the actions it returns, in order:

``(START, head)``        run the application for this request (it is now the one in flight)
``(BODY, data)``         body bytes of the request in flight
``(END, None)``          that request's body is complete
``(BODY_ERROR, error)``  its body is malformed or too slow: disconnect its application and
                         answer ``error`` if the response has not started, else just close
``(ERROR, error)``       answer ``error`` (a ``ProtocolError``) and close
``(HAND_OVER, (head, trailing))``  switch to the WebSocket protocol
``(PAUSE, None)`` / ``(RESUME, None)``  pause / resume reading from the transport
``(CLOSE, None)``        close the connection

One request is in flight at a time, so responses leave in request order. Back-pressure is
end to end: bytes are parsed a slice at a time and parsing stops at the first pipelined
request that must wait, reading pauses while anything waits (a pipelined request, unparsed
bytes, a request body the application has not consumed) or while the transport is over its
high-water mark, and no waiting request starts while it is. Whatever a client pipelines,
the connection holds at most one read plus one slice's requests.

The connection's state changes only through ``_TRANSITIONS`` (h11's ``_state.py`` style);
an event its state does not allow raises ``InvalidTransition`` naming both.
"""

from __future__ import annotations

import collections
import enum
from typing import Final

from narrows.server.http.errors import InvalidTransition
from narrows.server.http.parser import (
    HEAD_UPGRADE,
    MESSAGE_COMPLETE,
    BodyChunk,
    Head,
    ParserState,
    ProtocolError,
    RequestParser,
)

__all__ = [
    "BODY",
    "BODY_ERROR",
    "CLOSE",
    "END",
    "ERROR",
    "HAND_OVER",
    "PAUSE",
    "RESUME",
    "START",
    "Action",
    "ConnectionState",
    "HTTPConnection",
    "InvalidTransition",
]

START: Final = 0
BODY: Final = 1
END: Final = 2
BODY_ERROR: Final = 3
ERROR: Final = 4
HAND_OVER: Final = 5
PAUSE: Final = 6
RESUME: Final = 7
CLOSE: Final = 8
Action = tuple[int, object]
_END: Final[Action] = (END, None)

#: Bytes parsed at a time when a read holds more (pipelined requests, large bodies).
SLICE: Final = 4096


class ConnectionState(enum.Enum):
    # Members are singletons: hashing them by identity (a C slot) instead of Enum's
    # Python-level hash of the name keeps table lookups and set tests cheap.
    __hash__ = object.__hash__

    IDLE = "idle, waiting for a request"
    HEAD = "a request head is arriving"
    BUSY = "a request is in flight"
    STALLED = "a pipelined request waits for the client to read the responses"
    DRAINING = "shutting down once the request in flight is answered"
    UPGRADED = "handed over to the WebSocket protocol"
    CLOSED = "closed"


class Event(enum.Enum):
    __hash__ = object.__hash__

    HEAD_BYTES = "the first bytes of a request head"
    REQUEST = "a request head, started at once"
    DONE_IDLE = "a response complete, nothing waiting"
    DONE_HEAD = "a response complete, the next head arriving"
    DONE_NEXT = "a response complete, the next request started"
    DONE_STALLED = "a response complete, the next request held back"
    RESUMED = "the transport below its high-water mark again"
    HAND_OVER = "an Upgrade: websocket request reached"
    CLOSE = "the connection closes"
    SHUTDOWN = "a graceful shutdown"


_S = ConnectionState
_E = Event
_ANY_OPEN: Final = (_S.IDLE, _S.HEAD, _S.BUSY, _S.STALLED, _S.DRAINING)
_TRANSITIONS: Final[dict[tuple[ConnectionState, Event], ConnectionState]] = {
    (_S.IDLE, _E.HEAD_BYTES): _S.HEAD,
    (_S.IDLE, _E.REQUEST): _S.BUSY,
    (_S.HEAD, _E.REQUEST): _S.BUSY,
    (_S.IDLE, _E.HAND_OVER): _S.UPGRADED,
    (_S.HEAD, _E.HAND_OVER): _S.UPGRADED,
    (_S.BUSY, _E.HAND_OVER): _S.UPGRADED,
    (_S.STALLED, _E.HAND_OVER): _S.UPGRADED,
    (_S.BUSY, _E.DONE_IDLE): _S.IDLE,
    (_S.BUSY, _E.DONE_HEAD): _S.HEAD,
    (_S.BUSY, _E.DONE_NEXT): _S.BUSY,
    (_S.BUSY, _E.DONE_STALLED): _S.STALLED,
    (_S.STALLED, _E.RESUMED): _S.BUSY,
    (_S.IDLE, _E.SHUTDOWN): _S.CLOSED,
    (_S.HEAD, _E.SHUTDOWN): _S.CLOSED,
    (_S.BUSY, _E.SHUTDOWN): _S.DRAINING,
    (_S.STALLED, _E.SHUTDOWN): _S.CLOSED,
    (_S.DRAINING, _E.SHUTDOWN): _S.DRAINING,
    **{(state, _E.CLOSE): _S.CLOSED for state in (*_ANY_OPEN, _S.CLOSED)},
}
_IDLE: Final = ConnectionState.IDLE
_HEAD: Final = ConnectionState.HEAD
_BUSY: Final = ConnectionState.BUSY
_STALLED: Final = ConnectionState.STALLED
_DRAINING: Final = ConnectionState.DRAINING
_UPGRADED: Final = ConnectionState.UPGRADED
_CLOSED: Final = ConnectionState.CLOSED
_READING_STATES: Final = frozenset({_IDLE, _HEAD, _BUSY})
# Transitions taken for every request, read from the table once: a request starts from
# IDLE or HEAD (one state either way), and its response completes from BUSY.
_ON_REQUEST_STATE: Final = _TRANSITIONS[_IDLE, _E.REQUEST]
assert _TRANSITIONS[_HEAD, _E.REQUEST] is _ON_REQUEST_STATE
_DONE_IDLE_STATE: Final = _TRANSITIONS[_BUSY, _E.DONE_IDLE]
_DONE_HEAD_STATE: Final = _TRANSITIONS[_BUSY, _E.DONE_HEAD]
_PARSER_HEAD: Final = ParserState.HEAD
_PARSER_UPGRADED: Final = ParserState.UPGRADED
# Members as module constants: on Python 3.11 ``Event.X`` goes through EnumType.__getattr__.
_ON_HEAD_BYTES: Final = Event.HEAD_BYTES
_ON_REQUEST: Final = Event.REQUEST
_ON_DONE_IDLE: Final = Event.DONE_IDLE
_ON_DONE_HEAD: Final = Event.DONE_HEAD
_ON_DONE_NEXT: Final = Event.DONE_NEXT
_ON_DONE_STALLED: Final = Event.DONE_STALLED
_ON_RESUMED: Final = Event.RESUMED
_ON_HAND_OVER: Final = Event.HAND_OVER
_ON_CLOSE: Final = Event.CLOSE
_ON_SHUTDOWN: Final = Event.SHUTDOWN


class _Waiting:
    """A pipelined request parsed ahead of its turn: its head and what followed it."""

    __slots__ = ("error", "events", "head")

    def __init__(self, head: Head | None, error: ProtocolError | None = None) -> None:
        self.head = head
        self.error = error
        self.events: list[Action] = []


class HTTPConnection:
    __slots__ = (
        "_actions",
        "_body_full",
        "_in_flight_complete",
        "_unparsed",
        "_upgrade_head",
        "_waiting",
        "_write_paused",
        "parser",
        "reading",
        "state",
    )

    def __init__(self, parser: RequestParser) -> None:
        self.parser = parser
        self.state = _IDLE
        #: Whether reading is (asked to be) on: what the last PAUSE/RESUME said.
        self.reading = True
        self._actions: list[Action] = []
        self._unparsed = b""
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._in_flight_complete = True  # the request in flight has its whole body
        self._write_paused = False
        self._body_full = False
        self._upgrade_head: Head | None = None

    # -- inputs -------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Action]:
        actions = self._actions = []
        self._unparsed = self._unparsed + data if self._unparsed else data
        self._parse()
        self._sync_reading()
        return actions

    def response_complete(self, keep_alive: bool) -> list[Action]:
        """The response in flight is complete; ``keep_alive``: the connection is reusable."""
        actions = self._actions = []
        if self.state is _CLOSED:
            return actions
        if not keep_alive or self.state is _DRAINING:
            self._close()
            return actions
        if self._waiting:
            if self._write_paused:
                self._go(_ON_DONE_STALLED)
            else:
                self._go(_ON_DONE_NEXT)
                self._start_waiting()
        else:
            next_head = self.parser.state is _PARSER_HEAD
            if self.state is _BUSY:  # the usual case, its transitions read from the table once
                self.state = _DONE_HEAD_STATE if next_head else _DONE_IDLE_STATE
            else:
                self._go(_ON_DONE_HEAD if next_head else _ON_DONE_IDLE)  # InvalidTransition
            if self._unparsed:
                self._parse()
        if not self.reading:
            self._sync_reading()
        return actions

    def writing_paused(self) -> list[Action]:
        actions = self._actions = []
        self._write_paused = True
        self._sync_reading()
        return actions

    def writing_resumed(self) -> list[Action]:
        actions = self._actions = []
        self._write_paused = False
        if self.state is _STALLED:
            self._go(_ON_RESUMED)
            self._start_waiting()
        self._sync_reading()
        return actions

    def body_backlog(self, full: bool) -> list[Action]:
        """Whether the request body not yet consumed by the application is over its limit."""
        actions = self._actions = []
        self._body_full = full
        self._sync_reading()
        return actions

    def header_timeout(self) -> list[Action]:
        actions = self._actions = []
        if self.state is _HEAD:
            self._error(ProtocolError(408, "Request head not received in time"))
        elif self.parser.state is _PARSER_HEAD and self.state in _READING_STATES:
            self._close()  # the next head is too slow: close after what is in flight
        return actions

    def body_timeout(self) -> list[Action]:
        actions = self._actions = []
        if self.state is _BUSY and not self._in_flight_complete:
            actions.append((BODY_ERROR, ProtocolError(408, "Request body not received in time")))
            self._close()
        return actions

    def shutdown(self) -> list[Action]:
        actions = self._actions = []
        if self.state in _ANY_OPEN:
            self._waiting.clear()
            if self._go(_ON_SHUTDOWN) is _CLOSED:
                actions.append((CLOSE, None))
        return actions

    def close(self) -> None:
        """The I/O layer closes the connection (a timer, a forced close)."""
        if self.state is not _UPGRADED:
            self._go(_ON_CLOSE)
        self._waiting.clear()

    def connection_lost(self) -> None:
        self.state = _CLOSED
        self._waiting.clear()
        self._unparsed = b""

    # -- the parser's events ------------------------------------------------------------

    def _parse(self) -> None:
        parser = self.parser
        actions = self._actions
        waiting = self._waiting
        while self._unparsed and not waiting and self.state in _READING_STATES:
            data = self._unparsed
            if len(data) > SLICE:
                data, self._unparsed = data[:SLICE], data[SLICE:]
            else:
                self._unparsed = b""
            for event in parser.feed(data):
                if event is MESSAGE_COMPLETE:
                    if waiting:
                        waiting[-1].events.append(_END)
                    elif self.state is _BUSY and not self._in_flight_complete:
                        self._in_flight_complete = True
                        actions.append(_END)
                elif type(event) is tuple:  # a request head (the only tuple event)
                    head = event
                    if self.state is _IDLE or self.state is _HEAD:
                        if head[HEAD_UPGRADE] is not None:
                            self._upgrade_head = head  # handed over once the parser stops
                        else:
                            self.state = _ON_REQUEST_STATE
                            self._in_flight_complete = False
                            actions.append((START, head))
                    elif self.state is _BUSY:
                        waiting.append(_Waiting(head))
                    # DRAINING: no new requests on this connection
                elif type(event) is BodyChunk:
                    self._deliver((BODY, event.data))
                else:
                    self._on_error(event)  # type: ignore[arg-type]
            if parser.state is _PARSER_UPGRADED:
                self._on_upgrade_stop()
        if self.state is _IDLE and parser.state is _PARSER_HEAD:
            self._go(_ON_HEAD_BYTES)

    def _deliver(self, action: Action) -> None:
        waiting = self._waiting
        if waiting:
            waiting[-1].events.append(action)
        elif self.state is _BUSY and not self._in_flight_complete:
            self._actions.append(action)

    def _on_error(self, error: ProtocolError) -> None:
        if self.state is _BUSY and not self._in_flight_complete and not self._waiting:
            # The body of the request being served is malformed.
            self._actions.append((BODY_ERROR, error))
            self._close()
        elif self.state is _BUSY or self.state is _DRAINING:
            self._waiting.append(_Waiting(None, error))  # answered in its turn
        else:
            self._error(error)

    def _on_upgrade_stop(self) -> None:
        """The parser stopped after an ``Upgrade: websocket`` head: hand over in its turn."""
        parser = self.parser
        trailing, self._unparsed = parser.trailing + self._unparsed, b""
        parser.trailing = trailing
        head = self._upgrade_head
        if head is not None:
            self._hand_over(head)
        # else: the head is the last waiting request, handed over in its turn

    # -- flow ----------------------------------------------------------------------------

    def _start_waiting(self) -> None:
        """Start the oldest waiting request (a response just completed, or writing resumed)."""
        entry = self._waiting.popleft()
        if entry.error is not None:
            self._error(entry.error)
            return
        head = entry.head
        assert head is not None
        if head[HEAD_UPGRADE] is not None:
            self._hand_over(head)
            return
        self._in_flight_complete = False
        self._actions.append((START, head))
        for action in entry.events:
            if action[0] == END:
                self._in_flight_complete = True
            self._actions.append(action)
        if not self._waiting:
            self._parse()

    def _hand_over(self, head: Head) -> None:
        self._go(_ON_HAND_OVER)
        self._waiting.clear()
        self._actions.append((HAND_OVER, (head, self.parser.trailing)))

    def _sync_reading(self) -> None:
        want = (
            self.state in _READING_STATES
            and not self._write_paused
            and not self._waiting
            and not self._unparsed
            and not self._body_full
        )
        if want is not self.reading and self.state is not _CLOSED and self.state is not _UPGRADED:
            self.reading = want
            self._actions.append((RESUME if want else PAUSE, None))

    def _error(self, error: ProtocolError) -> None:
        self._actions.append((ERROR, error))
        self._go(_ON_CLOSE)

    def _close(self) -> None:
        if self.state is not _CLOSED:
            self._go(_ON_CLOSE)
            self._actions.append((CLOSE, None))

    def _go(self, event: Event) -> ConnectionState:
        """Take the table's transition for ``event``; the new state."""
        try:
            self.state = state = _TRANSITIONS[self.state, event]
        except KeyError:
            raise InvalidTransition(
                f"HTTP connection {self.state.value!r}: {event.value!r} is not allowed"
            ) from None
        return state
