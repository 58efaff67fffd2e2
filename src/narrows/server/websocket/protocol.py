"""The WebSocket side of the server: an ``asyncio.Protocol`` running one ASGI websocket cycle.

The HTTP protocol hands a connection over once it has a complete ``Upgrade: websocket``
request head::

    ws = WebSocketProtocol(state, request, transport, trailing_bytes)
    transport.set_protocol(ws)
    ws.start()

``start`` validates the handshake (400/426 otherwise), negotiates permessage-deflate, builds
the ASGI scope and runs the app. The app answers ``websocket.connect`` with
``websocket.accept`` (101), ``websocket.close`` (HTTP 403) or the denial-response extension
(``websocket.http.response.start``/``body``: any HTTP response). Frames are parsed by the
sans-I/O ``Connection``; this module only moves bytes, events and timers.

The app runs in a Task of its own, created for the connection with a copy of the current
``contextvars`` context, so ``asyncio.current_task()``, ``asyncio.timeout()`` and
``TaskGroup`` work from the app's first statement.

Back-pressure, both ways. Reading pauses while the app is behind (the receive queue holds
``websocket_max_queue`` messages or ``websocket_max_queue_bytes`` bytes of memory), and while the
client is not reading what we send (the transport's buffer is over
``flow_control_high_water``): then no pong is written (pongs owed meanwhile coalesce into
one) and ``websocket.send`` waits. A client that stops reading for good is released: once
the close handshake times out with our bytes still unsent, the transport is aborted (one
INFO line), which also ends an app blocked in ``send``.

Memory: no task of ours per connection (the app's own task is the only one), timers are
``call_later`` handles, the receive queue is created on first overflow.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import os
from collections import deque
from sys import getsizeof
from typing import TYPE_CHECKING, Any, Final

from narrows.server.http.response import check_header
from narrows.server.state import ServerState, UpgradeRequest
from narrows.server.websocket.connection import (
    Closed,
    Connection,
    ConnectionState,
    Event,
    Pong,
)
from narrows.server.websocket.deflate import PerMessageDeflate, negotiate
from narrows.server.websocket.frames import CloseCode, is_valid_close_code
from narrows.server.websocket.handshake import (
    Handshake,
    HandshakeError,
    accept_response,
    http_response,
    validate,
)
from narrows.types import Message

if TYPE_CHECKING:
    from narrows.server.access_log import WebSocketEvent

logger = logging.getLogger("narrows.server")

#: After our close frame is out and our side shut (FIN sent), how long (at most; never
#: longer than ``websocket_close_timeout``) we keep reading and discarding what the peer
#: still sends before closing the socket. Closing at once with unread data makes the kernel
#: send RST, which can destroy the close frame in flight.
LINGER_TIMEOUT: Final = 5.0
#: Bytes a client may send before the handshake is answered before reading pauses.
_PRE_ACCEPT_BUFFER: Final = 64 * 1024
#: Shared by every scope, as the HTTP side does (apps read it, never write it).
_ASGI: Final = {"version": "3.0", "spec_version": "2.5"}
_OPEN = ConnectionState.OPEN
_CLOSED = ConnectionState.CLOSED

# Why reading is paused (bits of ``WebSocketProtocol._paused``); it resumes when none is left.
_APP_BEHIND: Final = 1  # the receive queue is full
_CLIENT_NOT_READING: Final = 2  # our write buffer is over the high-water mark
_NOT_ACCEPTED: Final = 4  # the client sent too much before the handshake was answered


class ClientDisconnected(OSError):
    """``websocket.send`` after the connection closed (an ``OSError``, as in uvicorn, so
    frameworks that map ``OSError`` to a disconnect keep working)."""


class AppState(enum.Enum):
    """Where the ASGI cycle is, seen from the app's messages."""

    CONNECTING = "CONNECTING"  # websocket.connect delivered, no answer yet
    RESPONDING = "RESPONDING"  # denial response started, body pending
    ACCEPTED = "ACCEPTED"  # websocket.accept sent: messages flow
    CLOSED = "CLOSED"  # app closed, rejected, or the connection is gone


class WebSocketProtocol(asyncio.Protocol):
    __slots__ = (
        "_app_state",
        "_awaiting_pong",
        "_close_code",
        "_close_reason",
        "_close_timer",
        "_closing_tcp",
        "_conn",
        "_connect_pending",
        "_connect_timer",
        "_denial",
        "_drain",
        "_handshake",
        "_keepalive_timer",
        "_lifetime_timer",
        "_loop",
        "_lost",
        "_paused",
        "_queue",
        "_queued_bytes",
        "_task",
        "_trailing",
        "_waiter",
        "_write_paused",
        "request",
        "state",
        "transport",
    )

    def __init__(
        self,
        state: ServerState,
        request: UpgradeRequest,
        transport: asyncio.Transport,
        trailing_bytes: bytes = b"",
    ) -> None:
        self.state = state
        self.request = request
        self.transport = transport
        self._trailing = trailing_bytes
        self._loop = asyncio.get_running_loop()
        config = state.config
        self._conn = Connection(
            max_message_size=config.websocket_max_message_size,
            max_frame_size=config.websocket_max_frame_size,
            max_fragments=config.websocket_max_fragments,
        )
        self._handshake: Handshake | None = None
        self._app_state = AppState.CONNECTING
        self._connect_pending = True
        self._queue: deque[str | bytes] | None = None
        # Memory the queued messages hold (sys.getsizeof): a text message's characters take
        # 1, 2 or 4 bytes each, so len() would let emoji text hold 4x the bound.
        self._queued_bytes = 0
        self._waiter: asyncio.Future[Any] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._paused = 0  # why reading is paused: _APP_BEHIND | _CLIENT_NOT_READING | ...
        self._write_paused = False
        self._lost = False
        self._close_code: int | None = None  # set once the app should see a disconnect
        self._close_reason = ""
        self._task: asyncio.Task[None] | None = None
        self._connect_timer: asyncio.TimerHandle | None = None  # app must accept or close
        self._keepalive_timer: asyncio.TimerHandle | None = None  # next ping, or pong due
        self._close_timer: asyncio.TimerHandle | None = None  # close handshake, then linger
        self._lifetime_timer: asyncio.TimerHandle | None = None
        self._awaiting_pong = False
        self._closing_tcp = False
        self._denial: tuple[int, list[tuple[bytes, bytes]], list[bytes]] | None = None

    @property
    def reading_paused(self) -> bool:
        """Reading is paused: the app is behind, the client is not reading, or the client
        sent too much before the handshake was answered."""
        return bool(self._paused)

    # -- start -------------------------------------------------------------------------------

    def start(self) -> None:
        """Validate the handshake and run the app (call after ``transport.set_protocol``)."""
        try:
            handshake = validate(self.request)
        except HandshakeError as exc:
            logger.info("WebSocket handshake refused (%s): %s", exc.status, exc.message)
            self._write_response(exc.status, exc.headers, exc.message.encode())
            return
        self._handshake = handshake
        config = self.state.config
        self.state.connections.add(self)
        self.state.total_requests += 1  # a WebSocket counts once toward --max-requests
        self.transport.set_write_buffer_limits(high=config.flow_control_high_water)
        if self._trailing:
            self.data_received(self._trailing)
            self._trailing = b""
        self._log("WSCONNECTING")
        task = self._loop.create_task(
            self._run_app(self._build_scope(handshake)), context=contextvars.copy_context()
        )
        self._task = task
        self.state.tasks.add(task)
        task.add_done_callback(self.state.tasks.discard)
        if config.websocket_connect_timeout is not None and config.websocket_connect_timeout > 0:
            self._connect_timer = self._loop.call_later(
                config.websocket_connect_timeout, self._on_connect_timeout
            )

    def _build_scope(self, handshake: Handshake) -> dict[str, Any]:
        request = self.request
        return {
            "type": "websocket",
            "asgi": _ASGI,
            "http_version": request.http_version,
            "scheme": request.scheme,
            "path": request.path,
            "raw_path": request.raw_path,
            "query_string": request.query_string,
            "root_path": request.root_path,
            "headers": request.headers,
            "client": request.client,
            "server": request.server,
            "subprotocols": handshake.subprotocols,
            "state": dict(self.state.lifespan_state),
            "extensions": {"websocket.http.response": {}},
        }

    async def _run_app(self, scope: dict[str, Any]) -> None:
        try:
            await self.state.app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            self._after_app(failed=True)
            raise
        except BaseException as exc:
            logger.error(
                "Exception in ASGI application (WebSocket %s)", self.request.path, exc_info=exc
            )
            self._after_app(failed=True)
            if not isinstance(exc, Exception):
                raise
        else:
            self._after_app(failed=False)

    def _after_app(self, *, failed: bool) -> None:
        """The app returned: answer whatever it left open."""
        if self._lost:
            return
        state = self._app_state
        if state is AppState.CONNECTING or state is AppState.RESPONDING:
            if not failed:
                logger.error(
                    "ASGI app returned without accepting or closing the WebSocket %s",
                    self.request.path,
                )
            self._refuse(500, [], b"Internal Server Error")
        elif state is AppState.ACCEPTED:
            self._app_state = AppState.CLOSED
            self._server_close(CloseCode.INTERNAL_ERROR if failed else CloseCode.NORMAL, "")

    # -- receive -----------------------------------------------------------------------------

    async def receive(self) -> Message:
        if self._connect_pending:
            self._connect_pending = False
            return {"type": "websocket.connect"}
        queue = self._queue
        if queue:
            item: Any = queue.popleft()
            self._queued_bytes -= getsizeof(item)
            if self._paused & _APP_BEHIND:
                config = self.state.config
                if (
                    len(queue) <= config.websocket_max_queue // 2
                    and self._queued_bytes <= config.websocket_max_queue_bytes // 2
                ):
                    self._resume_reading(_APP_BEHIND)
        elif self._close_code is not None:
            item = None
        else:
            waiter = self._loop.create_future()
            self._waiter = waiter
            item = await waiter
        if type(item) is str:
            return {"type": "websocket.receive", "text": item}
        if type(item) is bytes:
            return {"type": "websocket.receive", "bytes": item}
        return {
            "type": "websocket.disconnect",
            "code": self._close_code,
            "reason": self._close_reason,
        }

    def _deliver(self, message: str | bytes) -> None:
        if self._app_state is not AppState.ACCEPTED:
            return  # the app closed: later messages have no reader
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(message)
                return
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        queue.append(message)
        self._queued_bytes += getsizeof(message)
        config = self.state.config
        if (
            len(queue) >= config.websocket_max_queue
            or self._queued_bytes >= config.websocket_max_queue_bytes
        ):
            self._pause_reading(_APP_BEHIND)

    def _set_disconnect(self, code: int, reason: str = "") -> None:
        if self._close_code is not None:
            return
        self._close_code = code
        self._close_reason = reason
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- send --------------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        if self._app_state is AppState.ACCEPTED and message["type"] == "websocket.send":
            conn = self._conn
            if conn.state is not _OPEN or self._lost:
                raise self._closed_error(message)
            text = message.get("text")
            if text is not None:
                if type(text) is not str:
                    raise TypeError(f"expected 'text' to be str, got {type(text).__name__}")
                if message.get("bytes") is not None:
                    raise TypeError("expected one of 'bytes' or 'text' in websocket.send, got both")
                frame = conn.send_text(text)
            else:
                data = message.get("bytes")
                if not isinstance(data, bytes | bytearray | memoryview):
                    got = "neither" if data is None else type(data).__name__
                    raise TypeError(f"expected 'bytes' or 'text' in websocket.send, got {got}")
                frame = conn.send_bytes(bytes(data))
            self.transport.write(frame)
            if self._write_paused:
                await self._wait_drain()
            return
        await self._send_other(message)

    async def _send_other(self, message: Message) -> None:
        kind = message.get("type")
        state = self._app_state
        if state is AppState.CONNECTING and not self._lost:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._refuse(403, [], b"")
            elif kind == "websocket.http.response.start":
                self._start_denial(message)
            else:
                raise RuntimeError(
                    'Expected ASGI message "websocket.accept", "websocket.close" or '
                    f'"websocket.http.response.start", got {kind!r}'
                )
        elif state is AppState.RESPONDING and not self._lost:
            if kind != "websocket.http.response.body":
                raise RuntimeError(
                    f'Expected ASGI message "websocket.http.response.body", got {kind!r}'
                )
            self._continue_denial(message)
        elif state is AppState.ACCEPTED and not self._lost and self._conn.state is _OPEN:
            if kind != "websocket.close":
                raise RuntimeError(
                    f'Expected ASGI message "websocket.send" or "websocket.close", got {kind!r}'
                )
            code = message.get("code", 1000) or 1000
            if not isinstance(code, int) or not is_valid_close_code(code):
                raise ValueError(
                    f"expected a close code 1000-1003, 1007-1014 or 3000-4999, got {code!r}"
                )
            self._app_state = AppState.CLOSED
            self._server_close(code, message.get("reason") or "")
        elif state is AppState.ACCEPTED and kind == "websocket.close":
            # The connection is already closing or closed (client close, shutdown, timeout):
            # the app's close asks for what is happening anyway, so it is not an error.
            self._app_state = AppState.CLOSED
        else:
            raise self._closed_error(message)

    def _closed_error(self, message: Message) -> ClientDisconnected:
        code = self._close_code if self._close_code is not None else "none yet"
        return ClientDisconnected(
            f"Cannot send ASGI message {message.get('type')!r}: the WebSocket "
            f"{self.request.path} is closed (close code {code})"
        )

    async def _wait_drain(self) -> None:
        drain = self._drain
        if drain is None:
            drain = self._drain = self._loop.create_future()
        await asyncio.shield(drain)
        if self._lost:
            raise ClientDisconnected(f"the WebSocket {self.request.path} closed while sending")

    # -- handshake outcomes --------------------------------------------------------------------

    def _accept(self, message: Message) -> None:
        handshake = self._handshake
        if handshake is None:  # unreachable: start() sets it before the app runs
            raise RuntimeError("expected a validated handshake before websocket.accept")
        config = self.state.config
        params = negotiate(handshake.extensions) if config.websocket_compression else None
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and not isinstance(subprotocol, str):
            raise TypeError(
                f"expected 'subprotocol' to be str or None, got {type(subprotocol).__name__}"
            )
        head = accept_response(  # raises InvalidResponse for a header that cannot go out
            handshake.key,
            subprotocol=subprotocol,
            extension=params.response if params is not None else None,
            headers=message.get("headers") or (),
            server_name=config.server_name,
        )
        self._cancel_connect_timer()
        self._app_state = AppState.ACCEPTED
        conn = self._conn
        if params is not None:
            conn.deflate = PerMessageDeflate(params)
        self.transport.write(head)
        conn.accept()
        self._log("WSCONNECT")
        if config.ping_interval is not None and config.ping_interval > 0:
            self._keepalive_timer = self._loop.call_later(config.ping_interval, self._send_ping)
        if config.websocket_timeout is not None and config.websocket_timeout > 0:
            self._lifetime_timer = self._loop.call_later(
                config.websocket_timeout, self._on_lifetime
            )
        self._resume_reading(_NOT_ACCEPTED)
        self.data_received(b"")  # frames the client sent before the 101 went out

    def _start_denial(self, message: Message) -> None:
        status = message.get("status")
        if not isinstance(status, int) or not 100 <= status <= 999:
            raise ValueError(f"expected an integer HTTP status, got {status!r}")
        # Checked now, as HTTP checks a response head: the app's send fails, not the close.
        headers = [check_header(item) for item in message.get("headers") or ()]
        self._app_state = AppState.RESPONDING
        self._denial = (status, headers, [])

    def _continue_denial(self, message: Message) -> None:
        denial = self._denial
        if denial is None:  # unreachable: RESPONDING is entered with a denial
            raise RuntimeError("expected websocket.http.response.start first")
        status, headers, parts = denial
        body = message.get("body", b"")
        if not isinstance(body, bytes | bytearray | memoryview):
            raise TypeError(f"expected 'body' to be bytes, got {type(body).__name__}")
        parts.append(bytes(body))
        if message.get("more_body", False):
            return
        self._refuse(status, headers, b"".join(parts))

    def _refuse(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """The handshake ends without an upgrade (the app closed or denied, failed, timed
        out, or the server is stopping): log WSREJECT, answer ``status`` and close."""
        self._app_state = AppState.CLOSED
        self._log("WSREJECT")
        self._write_response(status, headers, body)

    def _write_response(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Answer with a plain HTTP response and close: the connection never upgrades."""
        self._cancel_connect_timer()
        if not self._lost:
            self.transport.write(
                http_response(
                    status, headers=headers, body=body, server_name=self.state.config.server_name
                )
            )
            self._close_transport()
        self._set_disconnect(CloseCode.ABNORMAL)

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._closing_tcp:
            return  # lingering after our close: read and discard
        conn = self._conn
        events = conn.receive_data(data)
        if events:
            self._dispatch(events)
        state = conn.state
        if conn.outgoing and (not self._write_paused or state is _CLOSED):
            # Pongs wait while the client is not reading (they coalesce meanwhile); the
            # close frame that ends the connection goes out at once.
            self.transport.write(conn.data_to_send())
        if state is _CLOSED:
            self._close_transport()
        elif state is ConnectionState.CONNECTING and conn.pending_bytes > _PRE_ACCEPT_BUFFER:
            self._pause_reading(_NOT_ACCEPTED)

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            kind = type(event)
            if kind is str or kind is bytes:
                self._deliver(event)  # type: ignore[arg-type]
            elif kind is Pong:
                self._on_pong()
            elif isinstance(event, Closed):
                if event.error:
                    logger.info(
                        "WebSocket %s closed with %s: %s",
                        self.request.path,
                        event.code,
                        event.reason,
                    )
                self._set_disconnect(event.code, event.reason)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def pause_writing(self) -> None:
        self._write_paused = True
        self._pause_reading(_CLIENT_NOT_READING)

    def resume_writing(self) -> None:
        self._write_paused = False
        drain = self._drain
        if drain is not None:
            self._drain = None
            if not drain.done():
                drain.set_result(None)
        if self._lost:
            return
        conn = self._conn
        if conn.outgoing and not self._closing_tcp:
            self.transport.write(conn.data_to_send())  # the pong owed meanwhile
        self._resume_reading(_CLIENT_NOT_READING)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        for timer in (
            self._connect_timer,
            self._keepalive_timer,
            self._close_timer,
            self._lifetime_timer,
        ):
            if timer is not None:
                timer.cancel()
        self._connect_timer = self._keepalive_timer = None
        self._close_timer = self._lifetime_timer = None
        self.state.connections.discard(self)
        if self._conn.state is not ConnectionState.CONNECTING:  # it was accepted
            self._log("WSDISCONNECT")
        self._set_disconnect(CloseCode.ABNORMAL)
        self.resume_writing()
        task = self._task
        if task is not None and not task.done():
            timeout = self.state.config.application_close_timeout
            self._loop.call_later(timeout, self._cancel_app)

    def _cancel_app(self) -> None:
        task = self._task
        if task is not None and not task.done():
            logger.warning(
                "ASGI app for WebSocket %s did not return %ss after disconnect; cancelling",
                self.request.path,
                self.state.config.application_close_timeout,
            )
            task.cancel()

    def _pause_reading(self, reason: int) -> None:
        if self._closing_tcp or self._paused & reason:
            return
        if not self._paused and not self._lost:
            self.transport.pause_reading()
        self._paused |= reason

    def _resume_reading(self, reason: int) -> None:
        if not self._paused & reason:
            return
        self._paused &= ~reason
        if not self._paused and not self._lost and not self._closing_tcp:
            self.transport.resume_reading()

    # -- closing, keepalive, timeouts -------------------------------------------------------------

    def _server_close(self, code: int, reason: str) -> None:
        """Start the close handshake from our side; TCP closes on the peer's reply or timeout."""
        conn = self._conn
        if self._lost or conn.state is not _OPEN:
            return
        self.transport.write(conn.close(code, reason))
        self._cancel_keepalive_timer()
        self._cancel_close_timer()
        self._close_timer = self._loop.call_later(
            self.state.config.websocket_close_timeout, self._on_close_timeout
        )

    def _on_close_timeout(self) -> None:
        """No close frame from the peer in time after ours."""
        self._close_timer = None
        self._drop("no close frame from the client after ours")

    def _close_transport(self) -> None:
        """Close TCP after a close frame: FIN first, then linger reading (see LINGER_TIMEOUT)."""
        if self._lost or self._closing_tcp:
            return
        self._closing_tcp = True
        transport = self.transport
        self._cancel_keepalive_timer()
        self._cancel_close_timer()
        linger = min(LINGER_TIMEOUT, self.state.config.websocket_close_timeout)
        self._close_timer = self._loop.call_later(linger, self._on_linger_end)
        if not transport.can_write_eof():  # TLS: close() sends close_notify after our bytes
            transport.close()
            return
        transport.write_eof()
        if self._paused:
            self._paused = 0
            transport.resume_reading()  # read and discard until the peer closes

    def _on_linger_end(self) -> None:
        self._close_timer = None
        self._drop("the client did not close after our close frame")

    def _drop(self, why: str) -> None:
        """End the TCP connection now. ``close()`` would wait for our unsent bytes to drain,
        which never happens if the client has stopped reading: abort instead."""
        if self._lost:
            return
        transport = self.transport
        unsent = transport.get_write_buffer_size()
        if unsent:
            logger.info(
                "WebSocket %s: %s, and %d bytes it has not read; aborting the connection",
                self.request.path,
                why,
                unsent,
            )
            transport.abort()
        elif transport.is_closing():
            transport.abort()  # a TLS close stuck waiting for the peer
        else:
            transport.close()

    def shutdown(self) -> None:
        """Graceful server stop: close 1012 (service restart); pending handshakes get 503."""
        if self._app_state is AppState.CONNECTING and not self._lost:
            self._refuse(503, [], b"Service Unavailable")
        else:
            self._server_close(CloseCode.SERVICE_RESTART, "service restart")

    def force_close(self) -> None:
        """The drain period is over: drop the connection now."""
        if not self._lost:
            self.transport.abort()

    def _cancel_connect_timer(self) -> None:
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None

    def _cancel_keepalive_timer(self) -> None:
        if self._keepalive_timer is not None:
            self._keepalive_timer.cancel()
            self._keepalive_timer = None

    def _cancel_close_timer(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    def _on_connect_timeout(self) -> None:
        self._connect_timer = None
        if self._app_state is AppState.CONNECTING and not self._lost:
            logger.warning(
                "WebSocket %s: app did not accept or close within %ss; rejecting",
                self.request.path,
                self.state.config.websocket_connect_timeout,
            )
            self._refuse(403, [], b"")

    def _send_ping(self) -> None:
        self._keepalive_timer = None
        conn = self._conn
        if self._lost or conn.state is not _OPEN:
            return
        self.transport.write(conn.send_ping(os.urandom(4)))
        config = self.state.config
        if config.ping_timeout is not None and config.ping_timeout > 0:
            self._awaiting_pong = True
            self._keepalive_timer = self._loop.call_later(
                config.ping_timeout, self._on_ping_timeout
            )
        elif config.ping_interval:
            self._keepalive_timer = self._loop.call_later(config.ping_interval, self._send_ping)

    def _on_pong(self) -> None:
        if not self._awaiting_pong:
            return
        self._awaiting_pong = False
        self._cancel_keepalive_timer()
        interval = self.state.config.ping_interval
        if interval and self._conn.state is _OPEN:
            self._keepalive_timer = self._loop.call_later(interval, self._send_ping)

    def _on_ping_timeout(self) -> None:
        self._keepalive_timer = None
        if self._lost or self._conn.state is not _OPEN:
            return
        timeout = self.state.config.ping_timeout
        if self._paused & _APP_BEHIND and not self._paused & _CLIENT_NOT_READING and timeout:
            # We stopped reading because the app is behind: the pong may be waiting unread
            # in the socket. Not the client's fault: check again later.
            self._keepalive_timer = self._loop.call_later(timeout, self._on_ping_timeout)
            return
        logger.info("WebSocket %s: no pong within ping timeout; closing", self.request.path)
        self.transport.write(self._conn.close(CloseCode.INTERNAL_ERROR, "keepalive ping timeout"))
        self._set_disconnect(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        self._close_transport()

    def _on_lifetime(self) -> None:
        self._lifetime_timer = None
        self._server_close(CloseCode.GOING_AWAY, "maximum connection lifetime reached")

    def _log(self, event: WebSocketEvent) -> None:
        access_log = self.state.access_log
        if access_log is not None:
            access_log.websocket(event, self.request.client, self.request.path)
