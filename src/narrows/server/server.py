"""``Server(config, app=None)``: one server process serving every endpoint.

``await Server(config).serve()`` loads the application, runs lifespan startup, listens on
every endpoint ("Listening on http://127.0.0.1:8000" for each), and serves until SIGINT or
SIGTERM (or ``should_exit`` is set, or ``--max-requests`` is reached). Then it stops
accepting, lets in-flight requests finish for up to ``graceful_timeout`` seconds, closes
what is left, runs lifespan shutdown and returns 0. A second signal forces the close.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

from narrows.server.access_log import AccessLog
from narrows.server.app_loader import load_app
from narrows.server.config import Config
from narrows.server.endpoints import BoundSocket, Endpoint, bind_all, config_endpoints
from narrows.server.http.protocol import HTTPProtocol, ProtocolContext
from narrows.server.lifespan import Lifespan, LifespanFailure
from narrows.server.logs import configured_access_logger
from narrows.server.metrics import Recorder
from narrows.server.state import ServerState
from narrows.types import ASGIApp

__all__ = ["Server"]

logger = logging.getLogger("narrows.server")

_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Seconds a just-accepted connection gets to deliver its request once shutdown begins.
FRESH_CONNECTION_GRACE = 0.1


class Server:
    def __init__(
        self, config: Config, app: ASGIApp | None = None, metrics: Recorder | None = None
    ) -> None:
        self.config = config
        self.app = app
        self.metrics = metrics  # --metrics-bind: wraps the application (None: no cost)
        self.state: ServerState | None = None
        self.should_exit = asyncio.Event() if _has_loop() else None
        self.force_exit = False
        self.started = False
        self.bound: list[BoundSocket] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._signal_count = 0
        self._previous_handlers: dict[int, Any] = {}
        self._ctx: ProtocolContext | None = None

    # -- entry points -------------------------------------------------------------------

    def run(self, sockets: list[socket.socket | BoundSocket] | None = None) -> int:
        return asyncio.run(self.serve(sockets))

    async def serve(self, sockets: list[socket.socket | BoundSocket] | None = None) -> int:
        self.should_exit = asyncio.Event()
        self._install_signal_handlers()
        try:
            return await self._serve(sockets)
        finally:
            self._restore_signal_handlers()
            if self.state is not None and self.state.access_log is not None:
                self.state.access_log.close()

    async def _serve(self, sockets: list[socket.socket | BoundSocket] | None) -> int:
        app = self.app
        if app is None:
            app = load_app(self.config.application, self.config.app_dir)
        if self.metrics is not None:
            app = self.metrics.wrap(app)
        state = self.state = ServerState(config=self.config, app=app, metrics=self.metrics)
        if self.config.access_log is not None:
            state.access_log = AccessLog(self.config.access_log)
        elif (access_logger := configured_access_logger()) is not None:
            state.access_log = AccessLog(access_logger)
        lifespan = Lifespan(app, self.config.lifespan, state.lifespan_state)
        try:
            await lifespan.startup()
        except LifespanFailure as exc:
            logger.error("Application startup failed: %s", exc)
            return 3
        try:
            await self._listen(state, sockets)
        except BaseException:
            await lifespan.shutdown()
            raise
        try:
            await self._main_loop(state)
        finally:
            await self._shutdown(state)
        try:
            await lifespan.shutdown()
        except LifespanFailure as exc:
            logger.error("Application shutdown failed: %s", exc)
            return 1
        return 0

    def handle_exit(self, sig: int | None = None, frame: object = None) -> None:
        """What SIGINT/SIGTERM do: first begin the graceful stop, then force it."""
        self._signal_count += 1
        if self._signal_count > 1:
            self.force_exit = True
            logger.warning("Forcing shutdown")
        if self.should_exit is not None:
            self.should_exit.set()

    # -- steps ----------------------------------------------------------------------------

    async def _listen(
        self, state: ServerState, sockets: list[socket.socket | BoundSocket] | None
    ) -> None:
        loop = asyncio.get_running_loop()
        if sockets is None:
            self.bound = bind_all(self.config, config_endpoints(self.config))
        else:
            # A BoundSocket keeps its TLS context (the --workers supervisor passes those).
            self.bound = [
                s if isinstance(s, BoundSocket) else BoundSocket(s, _endpoint_of(s))
                for s in sockets
            ]
        ctx = self._ctx = ProtocolContext(state)
        ctx.date.start(loop)

        def factory() -> HTTPProtocol:
            return HTTPProtocol(ctx, loop)

        for item in self.bound:
            server = await _start_server(loop, factory, item, self.config.backlog)
            self._servers.append(server)
            logger.info("Listening on %s", item.url)
        self.started = True

    async def _main_loop(self, state: ServerState) -> None:
        assert self.should_exit is not None
        limit = self.config.max_requests
        if limit is None:
            await self.should_exit.wait()
            return
        while not self.should_exit.is_set():
            if state.total_requests >= limit:
                logger.info("Reached --max-requests %d; shutting down", limit)
                return
            try:
                await asyncio.wait_for(self.should_exit.wait(), 0.1)
            except TimeoutError:
                pass

    async def _shutdown(self, state: ServerState) -> None:
        logger.info("Shutting down")
        state.shutting_down = True
        for server in self._servers:
            server.close()
        # A connection accepted just before the listeners closed may not have delivered its
        # request yet; "idle" it is not. A moment lets that request arrive and be drained
        # instead of the connection being closed without an answer (rolling restarts).
        if state.connections and not self.force_exit:
            await asyncio.sleep(FRESH_CONNECTION_GRACE)
            # Woken by a timer, this runs before the loop next polls its sockets: yield once
            # so that bytes which arrived meanwhile (a process just descheduled for longer
            # than the grace) are read before any connection is judged idle.
            await asyncio.sleep(0)
        for connection in list(state.connections):
            connection.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.graceful_timeout
        while (state.connections or _running(state.tasks)) and not self.force_exit:
            if loop.time() >= deadline:
                logger.warning("Graceful timeout reached; closing remaining connections")
                break
            await asyncio.sleep(0.05)
        for connection in list(state.connections):
            connection.force_close()
        for task in list(state.tasks):
            task.cancel()
        if state.tasks:
            await asyncio.wait(list(state.tasks), timeout=1.0)
        for server in self._servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 1.0)
            except (TimeoutError, Exception):
                pass
        if self._ctx is not None:
            self._ctx.date.stop()
        if self.metrics is not None:
            self.metrics.close()  # the last tallies reach the exported metrics
        for item in self.bound:
            if item.created_path:
                try:
                    os.unlink(item.created_path)
                except OSError:
                    pass

    # -- signals ------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in _HANDLED_SIGNALS:
            try:
                self._previous_handlers[sig] = signal.getsignal(sig)
                loop.add_signal_handler(sig, self.handle_exit, sig, None)
            except (ValueError, RuntimeError, NotImplementedError):
                self._previous_handlers.pop(sig, None)  # not the main thread

    def _restore_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig, previous in self._previous_handlers.items():
            try:
                loop.remove_signal_handler(sig)
                signal.signal(sig, previous)
            except (ValueError, RuntimeError, TypeError):
                pass
        self._previous_handlers.clear()


async def _start_server(
    loop: asyncio.AbstractEventLoop,
    factory: Callable[[], HTTPProtocol],
    item: BoundSocket,
    backlog: int,
) -> asyncio.AbstractServer:
    if item.sock.family == socket.AF_UNIX:
        return await loop.create_unix_server(
            factory, sock=item.sock, ssl=item.ssl_context, backlog=backlog
        )
    return await loop.create_server(factory, sock=item.sock, ssl=item.ssl_context, backlog=backlog)


def _endpoint_of(sock: socket.socket) -> Endpoint:
    if sock.family == socket.AF_UNIX:
        return Endpoint("unix", path=str(sock.getsockname()))
    host, port = sock.getsockname()[:2]
    return Endpoint("tcp", host=host, port=port)


def _running(tasks: set[asyncio.Task[None]]) -> bool:
    """Whether any application Task still runs. An HTTP request's Task leaves the set when
    its application returns; one cancelled before it ever ran is dropped here."""
    tasks.difference_update([task for task in tasks if task.done()])
    return bool(tasks)


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
