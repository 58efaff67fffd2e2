"""The HTTP/1.1 connection: an ``asyncio.Protocol`` driving the parser and ASGI cycles.

One ``HTTPProtocol`` per TCP/unix/TLS connection. Bytes go through the sans-I/O
``RequestParser``; each request head becomes a ``RequestResponseCycle`` run as one task.
Pipelined requests queue behind the running one (reading pauses while any wait) so
responses leave in request order. A ``GET`` asking for ``Upgrade: websocket`` is handed to
``narrows.server.websocket.protocol.WebSocketProtocol`` when that module is installed.

Timers: ``keep_alive_timeout`` while idle between requests (and before the first),
``header_timeout`` from the first byte of a request head until the head is complete
(slowloris), ``http_timeout`` (Daphne ``-t``) for the application to answer.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import enum
import logging
from typing import IO, Any
from urllib.parse import unquote, unquote_to_bytes

import httptools

from narrows.server.config import Config
from narrows.server.http.cycle import RequestResponseCycle
from narrows.server.http.date import DateHeader
from narrows.server.http.parser import (
    BodyChunk,
    MessageComplete,
    ProtocolError,
    RequestHead,
    RequestParser,
)
from narrows.server.http.response import error_response
from narrows.server.proxy import ProxyHeaders
from narrows.server.state import ServerState, UpgradeRequest
from narrows.server.websocket.protocol import WebSocketProtocol
from narrows.types import Address, Receive, Scope, Send

__all__ = ["ConnectionState", "HTTPProtocol", "ProtocolContext"]

logger = logging.getLogger("narrows.server")

_SENDFILE_CHUNK = 256 * 1024


class ConnectionState(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"  # shutdown() asked: close once the in-flight response is done
    UPGRADED = "upgraded"  # handed over to the WebSocket protocol
    CLOSED = "closed"


# Enum members as plain module constants: on Python 3.11 each ``Enum.MEMBER`` lookup
# goes through EnumType.__getattr__ (~10x a global read), and these are read per request.
_OPEN = ConnectionState.OPEN
_CLOSING = ConnectionState.CLOSING
_UPGRADED = ConnectionState.UPGRADED
_CLOSED = ConnectionState.CLOSED


class ProtocolContext:
    """What every connection of one server shares: config, Date cache, proxy rules."""

    __slots__ = (
        "asgi",
        "config",
        "date",
        "extensions",
        "proxy",
        "server_line",
        "state",
        "websocket",
    )

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
        #: Whether ``Upgrade: websocket`` requests are handed to the WebSocket protocol.
        self.websocket = config.websocket


async def _service_unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    body = b"Service Unavailable\n"
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HTTPProtocol(asyncio.Protocol):
    def __init__(self, ctx: ProtocolContext, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.ctx = ctx
        self.state = ctx.state
        self.config: Config = ctx.config
        self.loop = loop or asyncio.get_event_loop()
        self.date = ctx.date
        self.server_line = ctx.server_line
        self.body_buffer_limit = self.config.request_body_buffer
        self.conn_state = _OPEN
        self.transport: asyncio.Transport | None = None
        self.parser = RequestParser(
            max_header_size=self.config.max_header_size,
            max_header_count=self.config.max_header_count,
            max_request_line=self.config.max_request_line,
        )
        self.client: Address | None = None
        self.server: Address | tuple[str, None] | None = None
        self.scheme = "http"
        #: --proxy-headers is on and the peer may set them
        self.peer_trusted = False
        self._peer_allowed: bool | None = None  # see _peer_is_trusted
        self.write_paused = False
        self._reading_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._cycles: collections.deque[RequestResponseCycle] = collections.deque()
        self._receiving: RequestResponseCycle | None = None
        self._upgrade_head: RequestHead | None = None
        self._pending_error: ProtocolError | None = None
        self._keepalive_timer: asyncio.TimerHandle | None = None
        self._scope_template: dict[str, Any] = {}  # made in connection_made
        #: What every request's context is copied from: the context the connection was
        #: made in, never the one a previous request's Task ran in.
        self._context = contextvars.copy_context()
        # Read on every request: kept as plain attributes.
        config = self.config
        self._asgi = ctx.asgi
        self._extensions = ctx.extensions
        self._root_path = config.root_path
        self._lifespan_state = self.state.lifespan_state
        self._limit_concurrency = config.limit_concurrency
        timeout = config.http_timeout
        self._http_timeout = timeout if timeout is not None and timeout > 0 else None
        self._keep_alive_timeout = config.keep_alive_timeout
        #: loop time the connection went idle; None while a request is in progress
        self._idle_since: float | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        self._timeout_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        tcp: asyncio.Transport = transport  # type: ignore[assignment]
        self.transport = tcp
        self.state.connections.add(self)
        tcp.set_write_buffer_limits(high=self.config.flow_control_high_water)
        self.client, self.server = _addresses(transport)
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"
        if self.ctx.proxy.enabled:
            self.peer_trusted = self._peer_is_trusted()
        # Every request scope of this connection starts as a copy of this one: copying a
        # dict whose keys are all in place, then replacing values, is cheaper than building
        # a 14-key dict per request.
        self._scope_template = {
            "type": "http",
            "asgi": self._asgi,
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
            "extensions": self._extensions,
        }
        self._start_keepalive_timer()

    def data_received(self, data: bytes) -> None:
        self._idle_since = None
        start: RequestResponseCycle | None = None
        parser = self.parser
        for event in parser.feed(data):
            kind = type(event)
            if kind is RequestHead:
                start = self._on_head(event) or start  # type: ignore[arg-type]
            elif kind is BodyChunk:
                if self._receiving is not None:
                    self._receiving.feed_body(event.data)  # type: ignore[union-attr]
            elif kind is MessageComplete:
                if self._receiving is not None:
                    self._receiving.message_complete()
                    self._receiving = None
            else:
                self._on_protocol_error(event)  # type: ignore[arg-type]
        if start is not None and self.conn_state is _OPEN:
            # Started after the whole batch: a request that arrived complete is complete
            # when the application first runs (which may finish it right here).
            self._run(start)
        if parser.upgraded:
            self._on_upgrade()
        elif parser.in_head and self._header_timer is None:
            self._header_timer = self.loop.call_later(
                self.config.header_timeout, self._on_header_timeout
            )

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost reports the disconnect

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn_state = _CLOSED
        self.state.connections.discard(self)
        self._cancel_timers()
        for index, cycle in enumerate(self._cycles):
            cycle.disconnect()
            task = cycle.task
            if index == 0 and task is not None and not task.done():
                self.loop.call_later(self.config.application_close_timeout, task.cancel)
        self._cycles.clear()
        self._receiving = None
        self._wake_drainers()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drainers()

    # -- used by the cycle --------------------------------------------------------------

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and self.conn_state is not _CLOSED:
            transport.write(data)

    async def drain(self) -> None:
        if not self.write_paused or self.conn_state is _CLOSED:
            return
        waiter = self.loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self._reading_paused or self.transport is None:
            return
        if len(self._cycles) > 1 or self._pending_error is not None:
            return  # pipelined requests wait: read no further until they are served
        receiving = self._receiving
        if receiving is not None and receiving.body_buffered() >= self.body_buffer_limit:
            return
        self._reading_paused = False
        self.transport.resume_reading()

    async def sendfile(self, file: IO[bytes], size: int) -> None:
        """Send ``size`` bytes of ``file``: ``loop.sendfile`` where possible, else chunks."""
        transport = self.transport
        if transport is None or self.conn_state is _CLOSED:
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
        state = self.state
        state.total_requests += 1
        access_log = state.access_log
        if access_log is not None:
            scope = cycle.scope
            access_log.http(
                scope["client"], scope["method"], scope["path"], cycle.status, cycle.bytes_sent
            )
        if self.conn_state is _CLOSED:
            return
        cycles = self._cycles
        if cycles and cycles[0] is cycle:
            cycles.popleft()
        if not cycle.keep_alive or self.conn_state is _CLOSING:
            self._close()
        elif cycles:
            # Not directly: an app that finishes at once would recurse once per request.
            self.loop.call_soon(self._run_next)
        elif self._pending_error is not None:
            self._send_error(self._pending_error)
        elif self._upgrade_head is not None:
            self._hand_over(self._upgrade_head)
        else:
            if self._reading_paused:
                self.resume_reading()
            # idle from now: what _start_keepalive_timer does, inline on this hot path
            self._idle_since = self.loop.time()
            if self._keepalive_timer is None:
                self._keepalive_timer = self.loop.call_later(
                    self._keep_alive_timeout, self._on_keepalive_timeout
                )

    def _run_next(self) -> None:
        if self._cycles and self.conn_state is _OPEN:
            self._run(self._cycles[0])
            self.resume_reading()

    # -- requests -----------------------------------------------------------------------

    def _on_head(self, head: RequestHead) -> RequestResponseCycle | None:
        """Queue the request; return its cycle when it is the one to start now."""
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self.conn_state is not _OPEN:
            self._receiving = None
            return None  # shutting down: no new requests on this connection
        method, target, http_version, headers, keep_alive, upgrade, expect_continue, root = head
        if upgrade is not None and (
            upgrade == b"websocket" and method == "GET" and self.ctx.websocket
        ):
            self._upgrade_head = head
            self._receiving = None
            return None
        if target[:1] == b"/":
            raw_path, _, query = target.partition(b"?")
        else:
            raw_path, query = _split_target(target)
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        scope = self._scope_template.copy()
        scope["http_version"] = http_version
        scope["method"] = method
        scope["path"] = path
        scope["raw_path"] = raw_path
        scope["query_string"] = query
        scope["headers"] = headers
        scope["state"] = self._lifespan_state.copy()
        if root is not None and self._peer_is_trusted():
            scope["root_path"] = _decode_root_path(root)
        if self.peer_trusted:
            scope["client"], scope["scheme"] = self.ctx.proxy.resolve(
                headers, self.client, self.scheme, peer_trusted=True
            )
        cycle = RequestResponseCycle(self, scope, keep_alive and upgrade is None, expect_continue)
        cycles = self._cycles
        cycles.append(cycle)
        self._receiving = cycle
        if len(cycles) == 1:
            return cycle
        self.pause_reading()
        return None

    def _run(self, cycle: RequestResponseCycle) -> None:
        state = self.state
        app = state.app
        limit = self._limit_concurrency
        if limit is not None and (len(state.connections) > limit or len(state.tasks) >= limit):
            app = _service_unavailable
        if self._http_timeout is not None:
            self._timeout_timer = self.loop.call_later(self._http_timeout, cycle.timed_out)
        # Each request gets a fresh copy of the connection's context: nothing the previous
        # request set leaks in, whichever callback happens to start this one.
        task = cycle.start(app, self.loop, self._context.copy())
        if not task.done():  # it suspended (always, on 3.11): track it until it finishes
            cycle.task = task
            state.tasks.add(task)
            task.add_done_callback(state.tasks.discard)

    # -- errors, upgrade, timers ----------------------------------------------------------

    def _on_protocol_error(self, error: ProtocolError) -> None:
        logger.info("Invalid HTTP request from %s: %s", _peer(self.client), error.reason)
        receiving = self._receiving
        if receiving is not None and self._cycles and receiving is self._cycles[0]:
            # The body of the request being served is malformed.
            self._receiving = None
            started = receiving.phase.name not in ("AWAITING_START", "START_RECEIVED")
            receiving.disconnect()
            if started:
                self._close()
            else:
                self._send_error(error)
        elif self._cycles:
            self._pending_error = error  # answered once the requests ahead are served
            self.pause_reading()
        else:
            self._send_error(error)

    def _send_error(self, error: ProtocolError) -> None:
        self.write(
            error_response(
                error.status,
                error.reason,
                date_line=self.date.line(),
                server_line=self.server_line,
            )
        )
        self._close()

    def _on_upgrade(self) -> None:
        head = self._upgrade_head
        if head is None:
            return  # an Upgrade we do not speak (h2c, CONNECT...): served as plain HTTP
        if not self._cycles:
            self._hand_over(head)

    def _hand_over(self, head: RequestHead) -> None:
        transport = self.transport
        if transport is None or self.conn_state is not _OPEN:
            return
        self._upgrade_head = None
        self._cancel_timers()
        raw_path, query = _split_target(head.target)
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        scheme = "wss" if self.scheme == "https" else "ws"
        client = self.client
        if self.peer_trusted:
            client, scheme = self.ctx.proxy.resolve(head.headers, client, scheme, peer_trusted=True)
        request = UpgradeRequest(
            http_version=head.http_version,
            method=head.method,
            path=path,
            raw_path=raw_path,
            query_string=query,
            headers=head.headers,
            client=client,
            server=self.server,
            scheme=scheme,
            root_path=(
                _decode_root_path(head.root_path)
                if head.root_path is not None and self._peer_is_trusted()
                else self._root_path
            ),
        )
        self.conn_state = _UPGRADED
        self.state.connections.discard(self)
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        ws = WebSocketProtocol(self.state, request, transport, self.parser.trailing)
        transport.set_protocol(ws)
        ws.start()

    def _peer_is_trusted(self) -> bool:
        """Whether the peer may direct the server (--forwarded-allow-ips; unix peers may)."""
        trusted = self._peer_allowed
        if trusted is None:
            client = self.client
            trusted = self._peer_allowed = self.ctx.proxy.is_trusted(client[0] if client else None)
        return trusted

    def _start_keepalive_timer(self) -> None:
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
        if idle_since is None or self._cycles or self.parser.in_head:
            return  # busy: re-armed when it next goes idle
        remaining = idle_since + self._keep_alive_timeout - self.loop.time()
        if remaining > 0:
            self._keepalive_timer = self.loop.call_later(remaining, self._on_keepalive_timeout)
        else:
            self._close()

    def _on_header_timeout(self) -> None:
        self._header_timer = None
        if self.parser.in_head and self.conn_state is _OPEN:
            logger.info("Request head from %s not complete in time", _peer(self.client))
            if not self._cycles:
                self._send_error(ProtocolError(408, "Request head not received in time"))
            else:
                self._close()

    def _cancel_timers(self) -> None:
        for timer in (self._keepalive_timer, self._header_timer, self._timeout_timer):
            if timer is not None:
                timer.cancel()
        self._keepalive_timer = self._header_timer = self._timeout_timer = None

    def _close(self) -> None:
        if self.transport is not None and self.conn_state is not _CLOSED:
            self.conn_state = _CLOSED
            self._cancel_timers()
            self.transport.close()

    # -- graceful shutdown (ManagedConnection) ------------------------------------------

    def shutdown(self) -> None:
        if self.conn_state is not _OPEN:
            return
        if not self._cycles:
            self._close()
        else:
            self.conn_state = _CLOSING
            while len(self._cycles) > 1:
                self._cycles.pop()

    def force_close(self) -> None:
        for cycle in self._cycles:
            if cycle.task is not None and not cycle.task.done():
                cycle.task.cancel()
        if self.transport is not None:
            self.conn_state = _CLOSED
            self.transport.abort()


def _split_target(target: bytes) -> tuple[bytes, bytes]:
    if target[:1] == b"/":
        raw_path, _, query = target.partition(b"?")
        return raw_path, query
    if target == b"*":
        return b"*", b""
    try:
        url = httptools.parse_url(target)
    except httptools.HttpParserInvalidURLError:
        return target, b""
    return url.path or b"/", url.query or b""


def _decode_root_path(value: bytes) -> str:
    """Daphne-Root-Path is URL-encoded (like the path it prefixes)."""
    return unquote_to_bytes(value).decode("utf-8", "replace")


def _addresses(
    transport: asyncio.BaseTransport,
) -> tuple[Address | None, Address | tuple[str, None] | None]:
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


def _peer(client: Address | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unix socket peer"
