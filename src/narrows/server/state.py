"""State shared by every connection of one server process, and the HTTP -> WebSocket handoff.

``ServerState`` is created once per worker process by ``narrows.server.server.Server`` and
handed to every protocol instance. The HTTP protocol hands a connection over to the
WebSocket protocol with an ``UpgradeRequest`` (see ``narrows.server.websocket.protocol``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from narrows.server.config import Config
from narrows.types import Address, ASGIApp, Headers

if TYPE_CHECKING:
    from narrows.server.access_log import AccessLog
    from narrows.server.metrics import Recorder


class ManagedConnection(Protocol):
    """What the server needs from every open connection to drain it on shutdown."""

    def shutdown(self) -> None:
        """Begin a graceful close: finish the current exchange, then close.

        HTTP closes once the in-flight response is done (idle connections at once);
        WebSocket sends close 1012 (service restart).
        """

    def force_close(self) -> None:
        """Abort now: the graceful period is over."""


@dataclass(slots=True, eq=False)
class ServerState:
    config: Config
    app: ASGIApp
    #: What the app stored in the lifespan scope's ``state``; each request scope gets a
    #: shallow copy, as the ASGI lifespan state extension requires.
    lifespan_state: dict[str, Any] = field(default_factory=dict)
    connections: set[ManagedConnection] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    access_log: AccessLog | None = None
    #: ``--metrics-bind``'s tallies; None (and no cost) without it.
    metrics: Recorder | None = None
    total_requests: int = 0
    shutting_down: bool = False


@dataclass(slots=True, eq=False)
class UpgradeRequest:
    """A complete HTTP/1.1 request head that asked for ``Upgrade: websocket``.

    Addresses and scheme are already resolved through trusted proxy headers.
    """

    http_version: str  # "1.1"
    method: str
    path: str  # percent-decoded, as in the HTTP scope
    raw_path: bytes  # without the query string
    query_string: bytes
    headers: Headers  # names lower-cased, in arrival order
    client: Address | None
    server: Address | tuple[str, None] | None
    scheme: str  # "ws" or "wss"
    root_path: str
