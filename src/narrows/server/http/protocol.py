"""The HTTP/1.1 connection's I/O: an ``asyncio.Protocol`` around the sans-I/O connection.

One ``HTTPProtocol`` per TCP/unix/TLS connection. What happens on the transport goes into
``HTTPConnection`` (``connection.py``), which decides; this module carries out its actions:
it runs each request's ``RequestResponseCycle`` in a Task, writes, pauses and resumes
reading, hands ``Upgrade: websocket`` requests to ``WebSocketProtocol``, and keeps the timers:

- ``keep_alive_timeout`` while idle between requests (and before the first);
- ``header_timeout`` from the first byte of a request head until it is complete (408);
- ``body_timeout`` for each 64 KiB of a request body while it is being read (408);
- ``http_timeout`` (Daphne ``-t``) for the application to answer (503);
- ``write_timeout`` while the client leaves the response unread (the transport is over its
  high-water mark, or a close waits for a buffer that does not drain): then abort.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import IO, Any, Final

from narrows.server.config import Config
from narrows.server.http.connection import (
    BODY,
    BODY_ERROR,
    CLOSE,
    END,
    ERROR,
    HAND_OVER,
    PAUSE,
    RESUME,
    START,
    Action,
    ConnectionState,
    HTTPConnection,
)
from narrows.server.http.cycle import CycleHost, RequestResponseCycle
from narrows.server.http.date import DateHeader
from narrows.server.http.parser import Head, ParserState, ProtocolError, RequestParser
from narrows.server.http.response import error_response
from narrows.server.http.scope import _PATHS, addresses, decode_root_path, path_parts, peer_name
from narrows.server.proxy import ProxyHeaders
from narrows.server.state import ServerState, UpgradeRequest
from narrows.server.tasks import EAGER as _EAGER_START
from narrows.server.websocket.protocol import WebSocketProtocol
from narrows.types import Address, Receive, Scope, Send

__all__ = ["BODY_TIMEOUT_WINDOW", "HTTPProtocol", "ProtocolContext"]

#: ``narrows.server.tasks.EAGER``, held in a C static of the compiled module.
_EAGER: Final = _EAGER_START

logger: Final = logging.getLogger("narrows.server")

_SENDFILE_CHUNK: Final = 256 * 1024
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
#: ``--body-timeout`` is the time each this many bytes of a request body may take.
BODY_TIMEOUT_WINDOW: Final = 64 * 1024

_PARSER_HEAD: Final = ParserState.HEAD
_IDLE: Final = ConnectionState.IDLE
_CLOSED: Final = ConnectionState.CLOSED


class ProtocolContext:
    """What every connection of one server shares: config, Date cache, proxy rules."""

    __slots__ = ("asgi", "config", "date", "extensions", "proxy", "server_line", "state")

    def __init__(self, state: ServerState) -> None:
        config = state.config
        self.state = state
        self.config = config
        self.date = DateHeader()
        name = config.server_name
        self.server_line = b"server: " + name.encode("latin-1") + b"\r\n" if name else b""
        self.proxy = ProxyHeaders(config)
        self.asgi = {"version": "3.0", "spec_version": "2.5"}
        #: Shared by every request scope (read-only for applications, like ``asgi``).
        self.extensions: dict[str, dict[object, object]] = {
            "http.response.trailers": {},
            "http.response.pathsend": {},
        }


async def _service_unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    body = b"Service Unavailable\n"
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _seconds(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


class HTTPProtocol(asyncio.Protocol, CycleHost):
    __slots__ = (
        "_body_timeout",
        "_body_timer",
        "_body_window",
        "_context",
        "_cycle",
        "_drain_waiters",
        "_header_timer",
        "_http_timeout",
        "_idle_since",
        "_keep_alive_timeout",
        "_keepalive_timer",
        "_lifespan_state",
        "_limit_concurrency",
        "_peer_allowed",
        "_root_path",
        "_scope_template",
        "_timeout_timer",
        "_write_timeout",
        "_write_timer",
        "body_buffer_limit",
        "client",
        "config",
        "connection",
        "ctx",
        "date",
        "loop",
        "parser",
        "peer_trusted",
        "scheme",
        "server",
        "server_line",
        "state",
        "tasks",
        "transport",
        "write_paused",
    )

    def __init__(self, ctx: ProtocolContext, loop: asyncio.AbstractEventLoop | None = None) -> None:
        config: Config = ctx.config
        self.ctx = ctx
        self.state = ctx.state
        self.config = config
        self.loop = loop or asyncio.get_event_loop()
        self.date = ctx.date
        self.server_line = ctx.server_line
        self.body_buffer_limit = config.request_body_buffer
        self.tasks = ctx.state.tasks
        self.transport: asyncio.Transport | None = None
        self.parser = RequestParser(
            max_header_size=config.max_header_size,
            max_header_count=config.max_header_count,
            max_request_line=config.max_request_line,
            websocket=config.websocket,
        )
        self.connection = HTTPConnection(self.parser)
        self.client: Address | None = None
        self.server: Address | tuple[str, None] | None = None
        self.scheme = "http"
        #: --proxy-headers is on and the peer may set them
        self.peer_trusted = False
        self._peer_allowed: bool | None = None  # see _peer_is_trusted
        self.write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._cycle: RequestResponseCycle | None = None  # the request in flight
        self._scope_template: dict[str, Any] = {}  # made in connection_made
        #: What every request's context is copied from: the context the connection was
        #: made in, never the one a previous request's Task ran in.
        self._context = contextvars.copy_context()
        self._root_path = config.root_path
        self._lifespan_state = self.state.lifespan_state
        self._limit_concurrency = config.limit_concurrency
        self._http_timeout = _seconds(config.http_timeout)
        self._body_timeout = _seconds(config.body_timeout)
        self._write_timeout = _seconds(config.write_timeout)
        self._keep_alive_timeout = config.keep_alive_timeout
        #: loop time the connection went idle; None while a request is in progress
        self._idle_since: float | None = None
        self._keepalive_timer: asyncio.TimerHandle | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        self._timeout_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_window = 0  # body bytes read since the body timer was armed
        self._write_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        tcp: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport = tcp
        self.state.connections.add(self)
        tcp.set_write_buffer_limits(high=self.config.flow_control_high_water)
        self.client, self.server = addresses(transport)
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"
        if self.ctx.proxy.enabled:
            self.peer_trusted = self._peer_is_trusted()
        # Every request scope of this connection starts as a copy of this one: copying a
        # dict whose keys are all in place, then replacing values, is cheaper than building
        # a 14-key dict per request.
        self._scope_template = {
            "type": "http",
            "asgi": self.ctx.asgi,
            "http_version": "1.1",
            "method": "GET",
            "scheme": self.scheme,
            "path": "/",
            "raw_path": b"/",
            "query_string": b"",
            "root_path": self._root_path,
            "headers": [],
            "client": self.client,
            "server": self.server,
            "state": None,
            "extensions": self.ctx.extensions,
        }
        self._went_idle()

    def data_received(self, data: bytes) -> None:
        self._idle_since = None
        self._execute(self.connection.receive_data(data))
        if self.parser.state is _PARSER_HEAD:
            if self._header_timer is None and self.connection.state is not _CLOSED:
                self._header_timer = self.loop.call_later(
                    self.config.header_timeout, self._on_header_timeout
                )
        elif self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost reports the disconnect

    def connection_lost(self, exc: Exception | None) -> None:
        self.connection.connection_lost()
        self.state.connections.discard(self)
        self._cancel_timers()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        cycle, self._cycle = self._cycle, None
        if cycle is not None:
            cycle.disconnect()
            task = cycle.task
            if task is not None and not task.done():
                self.loop.call_later(self.config.application_close_timeout, task.cancel)
        self._wake_drainers()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self._write_timeout is not None and self._write_timer is None:
            self._write_timer = self.loop.call_later(self._write_timeout, self._on_write_timeout)
        self._execute(self.connection.writing_paused())

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        self._wake_drainers()
        self._execute(self.connection.writing_resumed())

    # -- the connection's actions -------------------------------------------------------

    def _execute(self, actions: list[Action]) -> None:
        started: RequestResponseCycle | None = None
        for kind, value in actions:
            if kind == START:
                started = self._start(value)  # type: ignore[arg-type]
            elif kind == END:
                if self._body_timer is not None:
                    self._body_timer.cancel()
                    self._body_timer = None
                if self._cycle is not None:
                    self._cycle.message_complete()
            elif kind == BODY:
                self._on_body(value)  # type: ignore[arg-type]
            elif kind == PAUSE:
                self._set_reading(False)
            elif kind == RESUME:
                self._set_reading(True)
            elif kind == CLOSE:
                self._close()
            elif kind == ERROR:
                self._send_error(value)  # type: ignore[arg-type]
            elif kind == BODY_ERROR:
                self._on_body_error(value)  # type: ignore[arg-type]
            elif kind == HAND_OVER:
                self._hand_over(*value)  # type: ignore[misc]
        if started is None or started is not self._cycle:
            return
        # Run the application once the whole batch is in, in a Task of its own: a request
        # that arrived complete is complete when its application first runs (which may
        # answer it right here, eagerly).
        # (With Expect: 100-continue the client waits for us: the timer starts once sent.)
        if (
            self._body_timeout is not None
            and not started.request_complete
            and not started.expect_continue
        ):
            self._arm_body_timer()
        state = self.state
        app = state.app
        limit = self._limit_concurrency
        if limit is not None and (len(state.connections) > limit or len(state.tasks) >= limit):
            app = _service_unavailable
            if state.metrics is not None:
                state.metrics.refused += 1
        if self._http_timeout is not None:
            self._timeout_timer = self.loop.call_later(self._http_timeout, started.timed_out)
        # Each request gets a fresh copy of the connection's context: nothing the previous
        # request set leaks in, whichever callback happens to start this one.
        coro, context = started.run(app), self._context.copy()
        # As ``narrows.server.tasks.start_task`` does, written out: no Python frame.
        if _EAGER:
            task = asyncio.Task(coro, loop=self.loop, context=context, eager_start=True)  # type: ignore[call-arg]
        else:
            task = self.loop.create_task(coro, context=context)
        if not _EAGER or not task.done():  # it suspended: track it until it finishes
            started.task = task
            self.tasks.add(task)  # until the application returns (RequestResponseCycle.run)

    def _start(self, head: Head) -> RequestResponseCycle:
        """The request's scope and cycle, made the one in flight (``_execute`` runs it)."""
        method, target, http_version, headers, keep_alive, _, expect_continue, root = head
        scope = self._scope_template.copy()
        scope["http_version"] = http_version
        scope["method"] = method
        scope["path"], scope["raw_path"], scope["query_string"] = _PATHS.get(target) or path_parts(
            target
        )
        scope["headers"] = headers
        scope["state"] = self._lifespan_state.copy()
        if root is not None and self._peer_is_trusted():
            scope["root_path"] = decode_root_path(root)
        if self.peer_trusted:
            scope["client"], scope["scheme"] = self.ctx.proxy.resolve(
                headers, self.client, self.scheme, peer_trusted=True
            )
        self._cycle = cycle = RequestResponseCycle(
            self, scope, keep_alive, expect_continue, http_version == "1.1", method == "HEAD"
        )
        return cycle

    def _on_body(self, data: bytes) -> None:
        cycle = self._cycle
        if cycle is not None:
            cycle.feed_body(data)
        if self._body_timer is not None:
            self._body_window += len(data)
            if self._body_window >= BODY_TIMEOUT_WINDOW:
                self._arm_body_timer()

    def _on_body_error(self, error: ProtocolError) -> None:
        """The body of the request in flight is malformed or too slow (CLOSE follows)."""
        logger.info("Invalid HTTP request from %s: %s", peer_name(self.client), error.reason)
        cycle = self._cycle
        if cycle is None:
            return
        unanswered = cycle.unanswered()
        cycle.disconnect()
        if unanswered:
            self._write_error(error)

    def _set_reading(self, on: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if on:
            transport.resume_reading()
            if self._body_timeout is not None and self._body_timer is None:
                cycle = self._cycle
                if cycle is not None and not cycle.request_complete and not cycle.expect_continue:
                    self._arm_body_timer()
        else:
            transport.pause_reading()
            if self._body_timer is not None:  # the client is not the one holding things up
                self._body_timer.cancel()
                self._body_timer = None

    # -- used by the cycle (CycleHost) --------------------------------------------------

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def send_continue(self) -> None:
        self.write(_CONTINUE)
        if self._body_timeout is not None:
            self._arm_body_timer()

    async def drain(self) -> None:
        if not self.write_paused or self.transport is None or self.transport.is_closing():
            return
        waiter = self.loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def body_backlog(self, full: bool) -> None:
        self._execute(self.connection.body_backlog(full))

    async def sendfile(self, file: IO[bytes], size: int) -> None:
        """Send ``size`` bytes of ``file``: ``loop.sendfile`` where possible, else chunks."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        sendfile = getattr(self.loop, "sendfile", None)
        if sendfile is not None and transport.get_extra_info("sslcontext") is None:
            try:
                await sendfile(transport, file, 0, size, fallback=False)
                return
            except (NotImplementedError, RuntimeError, asyncio.SendfileNotAvailableError):
                file.seek(0)
        remaining = size
        while remaining > 0 and self.transport is not None and not self.transport.is_closing():
            chunk = await self.loop.run_in_executor(
                None, file.read, min(_SENDFILE_CHUNK, remaining)
            )
            if not chunk:
                break
            remaining -= len(chunk)
            self.write(chunk)
            await self.drain()

    def response_complete(self, cycle: RequestResponseCycle) -> None:
        if self._timeout_timer is not None:
            self._timeout_timer.cancel()
            self._timeout_timer = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        state = self.state
        state.total_requests += 1
        access_log = state.access_log
        if access_log is not None:
            scope = cycle.scope
            access_log.http(
                scope["client"], scope["method"], scope["path"], cycle.status, cycle.bytes_sent
            )
        if self._cycle is not cycle:
            return  # disconnected meanwhile
        self._cycle = None
        actions = self.connection.response_complete(cycle.keep_alive)
        if actions:
            first = actions[0][0]
            if first in (START, HAND_OVER):
                # Not directly: an application that finishes at once would recurse once
                # per pipelined request; and not in this Task's context (the request that
                # just finished), but in the connection's.
                self.loop.call_soon(self._execute, actions, context=self._context)
                return
            self._execute(actions)
        if self.connection.state is _IDLE:
            self._went_idle()

    # -- errors, upgrade, timers ----------------------------------------------------------

    def _send_error(self, error: ProtocolError) -> None:
        logger.info("Invalid HTTP request from %s: %s", peer_name(self.client), error.reason)
        self._write_error(error)
        self._close()

    def _write_error(self, error: ProtocolError) -> None:
        self.write(
            error_response(
                error.status, error.reason, date_line=self.date.line(), server_line=self.server_line
            )
        )

    def _hand_over(self, head: Head, trailing: bytes) -> None:
        transport = self.transport
        if transport is None:
            return
        self._cancel_timers()
        method, target, http_version, headers, _, _, _, root = head
        path, raw_path, query = path_parts(target)
        scheme = "wss" if self.scheme == "https" else "ws"
        client = self.client
        if self.peer_trusted:
            client, scheme = self.ctx.proxy.resolve(headers, client, scheme, peer_trusted=True)
        request = UpgradeRequest(
            http_version=http_version,
            method=method,
            path=path,
            raw_path=raw_path,
            query_string=query,
            headers=headers,
            client=client,
            server=self.server,
            scheme=scheme,
            root_path=(
                decode_root_path(root)
                if root is not None and self._peer_is_trusted()
                else self._root_path
            ),
        )
        self.state.connections.discard(self)
        transport.resume_reading()
        ws = WebSocketProtocol(self.state, request, transport, trailing)
        transport.set_protocol(ws)
        ws.start()

    def _peer_is_trusted(self) -> bool:
        """Whether the peer may direct the server (--forwarded-allow-ips; unix peers may)."""
        trusted = self._peer_allowed
        if trusted is None:
            client = self.client
            trusted = self._peer_allowed = self.ctx.proxy.is_trusted(client[0] if client else None)
        return trusted

    def _went_idle(self) -> None:
        """Mark the connection idle; it closes ``keep_alive_timeout`` seconds from now.

        One timer per connection, re-armed only when it fires early, so an idle period
        costs a clock read instead of a timer per request.
        """
        self._idle_since = self.loop.time()
        if self._keepalive_timer is None:
            self._keepalive_timer = self.loop.call_later(
                self._keep_alive_timeout, self._on_keepalive_timeout
            )

    def _on_keepalive_timeout(self) -> None:
        self._keepalive_timer = None
        idle_since = self._idle_since
        if idle_since is None or self.connection.state is not _IDLE:
            return  # busy: re-armed when it next goes idle
        remaining = idle_since + self._keep_alive_timeout - self.loop.time()
        if remaining > 0:
            self._keepalive_timer = self.loop.call_later(remaining, self._on_keepalive_timeout)
        else:
            self._close()

    def _on_header_timeout(self) -> None:
        self._header_timer = None
        if self.parser.state is _PARSER_HEAD:
            logger.info("Request head from %s not complete in time", peer_name(self.client))
            self._execute(self.connection.header_timeout())

    def _arm_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        assert self._body_timeout is not None
        self._body_window = 0
        self._body_timer = self.loop.call_later(self._body_timeout, self._on_body_timeout)

    def _on_body_timeout(self) -> None:
        self._body_timer = None
        self._execute(self.connection.body_timeout())

    def _on_write_timeout(self) -> None:
        self._write_timer = None
        if self.transport is not None:
            logger.info(
                "Client %s left the response unread for %gs; dropping the connection",
                peer_name(self.client),
                self._write_timeout,
            )
            self.force_close()

    def _cancel_timers(self) -> None:
        for timer in (
            self._keepalive_timer,
            self._header_timer,
            self._timeout_timer,
            self._body_timer,
        ):
            if timer is not None:
                timer.cancel()
        self._keepalive_timer = self._header_timer = self._timeout_timer = None
        self._body_timer = None

    def _close(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.connection.close()
        self._cancel_timers()
        transport.close()
        # A close waits for the write buffer to drain; a client that never reads would
        # hold the connection forever.
        if (
            self._write_timeout is not None
            and self._write_timer is None
            and transport.get_write_buffer_size() > 0
        ):
            self._write_timer = self.loop.call_later(self._write_timeout, self._on_write_timeout)

    # -- graceful shutdown (ManagedConnection) ------------------------------------------

    def shutdown(self) -> None:
        self._execute(self.connection.shutdown())

    def force_close(self) -> None:
        cycle = self._cycle
        if cycle is not None and cycle.task is not None and not cycle.task.done():
            cycle.task.cancel()
        if self.transport is not None:
            self.connection.close()
            self.transport.abort()
