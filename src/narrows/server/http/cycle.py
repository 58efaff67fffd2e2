"""The one ASGI HTTP request/response cycle: ``receive``/``send`` for one request.

The connection (``protocol.py``, through the small ``CycleHost`` interface) feeds request
body bytes in with ``feed_body`` / ``message_complete`` / ``disconnect``; the application
pulls them with ``receive()`` and answers with ``send()``. The response side is an explicit
state machine (``Phase``); a message that does not fit the current phase raises
``UnexpectedMessage`` naming what was expected and what arrived.

Speed: ``send()`` never suspends unless the transport is over its high-water mark, and a
response whose body arrives in one message (the usual case) goes out as one
``transport.write`` of head and body with a Content-Length.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
from collections.abc import Mapping
from typing import IO, Any, Final, NoReturn, Protocol

from narrows.server.http.date import DateHeader
from narrows.server.http.errors import UnexpectedMessage
from narrows.server.http.response import (
    CHUNKED,
    LAST_CHUNK,
    LENGTH,
    NO_BODY,
    InvalidResponse,
    encode_chunk,
    encode_head,
    encode_trailers,
    error_response,
)
from narrows.types import ASGIApp, Message, Scope

__all__ = ["CycleHost", "Phase", "RequestResponseCycle", "UnexpectedMessage"]

logger: Final = logging.getLogger("narrows.server")

_SENDFILE_CHUNK: Final = 256 * 1024


class CycleHost(Protocol):
    """What a cycle needs from its connection (``HTTPProtocol`` provides it).

    ``HTTPProtocol`` subclasses it explicitly, not only structurally: compiled, the cycle's
    calls on a host of that class then go through mypyc's trait vtable instead of generic
    attribute lookups (about 1,200 fewer instructions per request). Any other object with
    these members still works, on the generic path.
    """

    __slots__ = ()

    loop: asyncio.AbstractEventLoop
    date: DateHeader
    server_line: bytes
    body_buffer_limit: int
    write_paused: bool
    #: The server's running application Tasks (see ``run``).
    tasks: set[asyncio.Task[None]]

    def write(self, data: bytes) -> None: ...

    def send_continue(self) -> None:
        """Write ``100 Continue``: the client now sends the body (its timer starts)."""

    async def drain(self) -> None: ...

    async def sendfile(self, file: IO[bytes], size: int) -> None: ...

    def body_backlog(self, full: bool) -> None:
        """More than ``body_buffer_limit`` unconsumed body bytes (reading pauses), or not."""

    def response_complete(self, cycle: RequestResponseCycle) -> None: ...


class Phase(enum.Enum):
    AWAITING_START = 'awaiting "http.response.start"'
    START_RECEIVED = "started, head not yet written"
    STREAMING = "streaming the body"
    AWAITING_TRAILERS = 'awaiting "http.response.trailers"'
    COMPLETE = "complete"


# Enum members as plain module constants: on Python 3.11 each ``Enum.MEMBER`` lookup
# goes through EnumType.__getattr__ (~10x a global read), and these are read per request.
_AWAITING_START: Final = Phase.AWAITING_START
_START_RECEIVED: Final = Phase.START_RECEIVED
_STREAMING: Final = Phase.STREAMING
_AWAITING_TRAILERS: Final = Phase.AWAITING_TRAILERS
_COMPLETE: Final = Phase.COMPLETE

_EXPECTED: Final = {
    _AWAITING_START: '"http.response.start"',
    _START_RECEIVED: '"http.response.body" or "http.response.pathsend"',
    _STREAMING: '"http.response.body"',
    _AWAITING_TRAILERS: '"http.response.trailers"',
}


def _as_dict(message: object) -> dict[str, Any]:
    if not isinstance(message, Mapping):
        raise UnexpectedMessage(
            f"Expected an ASGI message (a dict), got {type(message).__name__}: {message!r:.100}"
        )
    return dict(message)


def _invalid_status(status: object) -> NoReturn:
    if status is None:
        raise InvalidResponse('Expected "http.response.start" with a "status", got none')
    raise InvalidResponse(f"Expected an int HTTP status 100-999, got {status!r}")


class RequestResponseCycle:
    __slots__ = (
        "_backlogged",
        "_body",
        "_body_size",
        "_content_length",
        "_framing",
        "_headers",
        "_last_delivered",
        "_trailer_fields",
        "_trailers",
        "_waiter",
        "bytes_sent",
        "conn",
        "disconnected",
        "expect_continue",
        "http11",
        "keep_alive",
        "method_head",
        "phase",
        "request_complete",
        "scope",
        "status",
        "task",
    )

    def __init__(
        self,
        conn: CycleHost,
        scope: Scope,
        keep_alive: bool,
        expect_continue: bool,
        http11: bool,
        method_head: bool,
    ) -> None:
        self.conn = conn
        self.scope = scope
        self.http11 = http11
        self.method_head = method_head
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.phase = _AWAITING_START
        self.disconnected = False
        self.request_complete = False
        self.task: asyncio.Task[None] | None = None
        self.status = 0
        self.bytes_sent = 0
        self._body: list[bytes] | None = None  # made when body bytes arrive
        self._body_size = 0
        self._backlogged = False
        self._last_delivered = False
        self._waiter: asyncio.Future[None] | None = None
        self._headers: Any = ()
        self._trailers = False
        self._trailer_fields: list[object] | None = None  # made when needed
        self._framing = NO_BODY
        self._content_length: int | None = None

    # -- fed by the connection ------------------------------------------------------------

    def feed_body(self, data: bytes) -> None:
        if self._body is None:
            self._body = [data]
        else:
            self._body.append(data)
        self._body_size += len(data)
        if self._body_size >= self.conn.body_buffer_limit and not self._backlogged:
            self._backlogged = True
            self.conn.body_backlog(True)
        self._wake()

    def message_complete(self) -> None:
        self.request_complete = True
        if self._waiter is not None:
            self._wake()

    def disconnect(self) -> None:
        self.disconnected = True
        self._wake()

    def unanswered(self) -> bool:
        """Nothing of the response is on the wire yet: an error status can still be sent."""
        return self.phase is _AWAITING_START or self.phase is _START_RECEIVED

    def _take_body(self) -> bytes:
        body = self._body
        if body is None:
            return b""
        data = body[0] if len(body) == 1 else b"".join(body)
        self._body = None
        self._body_size = 0
        if self._backlogged:
            self._backlogged = False
            self.conn.body_backlog(False)
        return data

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the ASGI side ----------------------------------------------------------------------

    async def receive(self) -> Message:
        if (
            self.request_complete
            and not self._last_delivered
            and not self.disconnected
            and self.phase is not _COMPLETE
        ):  # the usual case: the whole (or the rest of the) body is here
            self._last_delivered = True
            self.expect_continue = False
            if not self._body:
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": self._take_body(), "more_body": False}
        if self.expect_continue:
            self.expect_continue = False
            if not self.request_complete and not self.disconnected:
                self.conn.send_continue()
        while self._must_wait():
            self._waiter = self.conn.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.disconnected or self.phase is _COMPLETE:
            return {"type": "http.disconnect"}
        data = self._take_body()
        more = not self.request_complete
        if not more:
            self._last_delivered = True
        return {"type": "http.request", "body": data, "more_body": more}

    def _must_wait(self) -> bool:
        if self.disconnected or self.phase is _COMPLETE:
            return False
        if self._last_delivered:
            return True  # the request is consumed: only a disconnect is left to report
        return not self._body and not self.request_complete

    async def send(self, message: Message) -> None:
        # ASGI messages are dicts: read as one, a field costs a C call instead of a
        # method call (other mappings are read through a copy, with the same result).
        fields: dict[str, Any] = message if type(message) is dict else _as_dict(message)
        mtype = fields["type"]
        phase = self.phase
        if phase is _AWAITING_START and mtype == "http.response.start":
            status = fields.get("status")
            if type(status) is not int or not 100 <= status <= 999:
                _invalid_status(status)
            self.status = status
            self._headers = fields.get("headers", ())
            if fields.get("trailers"):
                self._trailers = True
            self.expect_continue = False
            self.phase = _START_RECEIVED
            return
        if phase is _START_RECEIVED or phase is _STREAMING:
            if mtype == "http.response.body":
                if not self.disconnected:
                    self._send_body(fields.get("body", b""), fields.get("more_body", False))
            elif mtype == "http.response.pathsend" and phase is _START_RECEIVED:
                if not self.disconnected:
                    await self._pathsend(fields.get("path"))
            else:
                self._unexpected(mtype)
        elif phase is _AWAITING_TRAILERS and mtype == "http.response.trailers":
            self._send_trailers(fields)
        else:
            self._unexpected(mtype)
        if self.conn.write_paused and not self.disconnected:
            await self.conn.drain()

    def _unexpected(self, mtype: object) -> NoReturn:
        expected = _EXPECTED.get(self.phase)
        if expected is None:
            raise UnexpectedMessage(
                f'Unexpected ASGI message "{mtype}" sent, after the response was complete'
            )
        raise UnexpectedMessage(f'Expected ASGI message {expected}, got "{mtype}"')

    def _write_head(self, body_length: int | None) -> bytes:
        """The response head, framed for ``body_length`` (None while the body streams)."""
        conn = self.conn
        date = conn.date
        data, self._framing, self.keep_alive, self._content_length = encode_head(
            self.status,
            self._headers,
            http11=self.http11,
            keep_alive=self.keep_alive,
            method_head=self.method_head,
            body_length=body_length,
            want_trailers=self._trailers,
            date_line=date.value if date.ticking else date.line(),
            server_line=conn.server_line,
        )
        self.phase = _STREAMING
        return data

    def _send_body(self, body: bytes, more: bool) -> None:
        size = len(body)
        # The head goes out with the first body bytes.
        prefix = self._write_head(None if more else size) if self.phase is _START_RECEIVED else b""
        framing = self._framing
        if framing is LENGTH:  # the usual case first
            if self.bytes_sent + size > (self._content_length or 0):
                if prefix:  # nothing was written yet: a clean 500 is still possible
                    self.phase = _START_RECEIVED
                raise InvalidResponse(
                    f"Response body longer than its Content-Length ({self._content_length} bytes)"
                )
            data = body
        elif framing is CHUNKED:
            data = encode_chunk(body) if body else b""
            if not more and not self._trailers:
                data += LAST_CHUNK
        elif framing is NO_BODY:
            data = b""
        else:  # CLOSE: the body as it comes, ended by closing the connection
            data = body
        self.bytes_sent += size
        if prefix:
            self.conn.write(prefix + data)
        elif data:
            self.conn.write(data)
        if not more:
            if self._trailers:
                self.phase = _AWAITING_TRAILERS
            else:
                self._finish()

    def _send_trailers(self, message: dict[str, Any]) -> None:
        fields = self._trailer_fields
        if fields is None:
            fields = self._trailer_fields = []
        fields.extend(message.get("headers", ()))
        if message.get("more_trailers", False):
            return
        if not self.disconnected and self._framing is CHUNKED:
            self.conn.write(encode_trailers(fields))
        self._finish()

    async def _pathsend(self, path: object) -> None:
        if not isinstance(path, str):
            raise InvalidResponse(
                f'Expected "http.response.pathsend" with a str "path", got {path!r}'
            )
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise InvalidResponse(f"http.response.pathsend cannot open {path!r}: {exc}") from exc
        try:
            size = os.fstat(fd).st_size
            head = self._write_head(size)
            self.conn.write(head)
            if self._framing is not NO_BODY:
                with os.fdopen(fd, "rb", closefd=False) as file:
                    await self.conn.sendfile(file, size)
                self.bytes_sent = size
        finally:
            os.close(fd)
        self._finish()

    def _finish(self) -> None:
        self.phase = _COMPLETE
        self._headers = ()
        if not self.request_complete or (
            self._framing is LENGTH
            and self._content_length is not None
            and self.bytes_sent != self._content_length
        ):
            self.keep_alive = False
        if self._waiter is not None:
            self._wake()
        self.conn.response_complete(self)

    # -- running the application --------------------------------------------------------

    async def run(self, app: ASGIApp) -> None:
        """Run the application to completion and answer whatever it left open.

        The connection runs this in a Task of its own (``narrows.server.tasks``).
        """
        application: Any = app  # an ASGI app should return None; whatever it returns is logged
        try:
            result = await application(self.scope, self.receive, self.send)
        except BaseException as exc:
            self._outcome(None, exc)
        else:
            if result is not None or self.phase is not _COMPLETE:
                self._outcome(result, None)
        finally:
            # The application has returned: the server stops waiting for its Task (here
            # rather than in a done callback, which costs a loop callback per request).
            task = self.task
            if task is not None:
                self.conn.tasks.discard(task)

    def _outcome(self, result: object, exc: BaseException | None) -> None:
        if exc is None:
            if result is not None:
                logger.error("ASGI callable returned a value instead of None: %r", result)
            if self.phase is not _COMPLETE:
                self._abandon("returned without completing the response")
        elif isinstance(exc, asyncio.CancelledError):
            self._abandon("cancelled")
        else:
            self._app_failed(exc)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise exc

    def _app_failed(self, exc: BaseException) -> None:
        logger.error("Exception in ASGI application", exc_info=exc)
        self._server_error()

    def _abandon(self, why: str) -> None:
        if self.phase is _COMPLETE or self.disconnected:
            return
        if why != "cancelled":
            logger.error("ASGI callable %s", why)
        self._server_error()

    def _server_error(self, status: int = 500, message: str = "Internal Server Error") -> None:
        if self.phase is _COMPLETE or self.disconnected:
            return
        if self.phase is _AWAITING_START or self.phase is _START_RECEIVED:
            conn = self.conn
            self.status = status
            self.conn.write(
                error_response(
                    status, message, date_line=conn.date.line(), server_line=conn.server_line
                )
            )
        self.keep_alive = False
        self._framing = NO_BODY
        self.phase = _COMPLETE
        self._wake()
        self.conn.response_complete(self)

    def timed_out(self) -> None:
        """Daphne's ``--http-timeout`` ran out: 503 if nothing was sent, else close."""
        if self.phase is _COMPLETE:
            return
        logger.warning("Application timed out answering %s", self.scope["path"])
        self._server_error(503, "Application failed to respond within time limit")
        if self.task is not None:
            self.task.cancel()
