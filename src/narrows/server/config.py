"""The narrows server's configuration: one immutable record every part of the server reads.

The command line (``narrows.server.cli``), ``manage.py runserver`` and tests all build a
``Config``; nothing in the server reads ``sys.argv`` or environment variables directly.
Defaults follow Daphne where Daphne has the option, so ``daphne ...`` -> ``narrows ...`` keeps
its meaning; options Daphne lacks get safe defaults for a server on the open internet.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000

LifespanMode = Literal["auto", "on", "off"]
LoopName = Literal["auto", "asyncio", "uvloop"]


@dataclass(frozen=True, slots=True)
class Config:
    """Every server option. Field names match the long command-line flags."""

    # -- application ---------------------------------------------------------------------
    #: "module.path:attribute" (the attribute may be dotted). Ignored when ``app`` is given
    #: programmatically to the server.
    application: str = ""
    #: Directory put first on ``sys.path`` before importing the application (Daphne: ".").
    app_dir: str = "."
    #: ASGI ``root_path`` for every scope (mount point behind a proxy).
    root_path: str = ""
    lifespan: LifespanMode = "auto"

    # -- where to listen (any number at once) --------------------------------------------
    host: str | None = None  # -b/--bind
    port: int | None = None  # -p/--port
    unix_socket: str | None = None  # -u/--unix-socket
    file_descriptors: tuple[int, ...] = ()  # --fd (repeatable)
    endpoints: tuple[str, ...] = ()  # -e/--endpoint: "tcp:port=8000:interface=0.0.0.0", ...
    uds_permissions: int | None = None  # --uds-permissions (octal on the command line)
    backlog: int = 2048

    # -- TLS -------------------------------------------------------------------------------
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    ssl_ca_certs: str | None = None

    # -- processes -------------------------------------------------------------------------
    workers: int = 1
    max_requests: int | None = None  # recycle a worker after this many requests
    max_requests_jitter: int = 0
    worker_healthcheck_timeout: float = 30.0
    reload: bool = False
    reload_dirs: tuple[str, ...] = ()
    loop: LoopName = "auto"
    #: Threads for Django's sync views (narrows.asgi), passed on as the NARROWS_THREADS
    #: environment variable: the server itself never imports Django. None: the default.
    threads: int | None = None

    # -- logging ---------------------------------------------------------------------------
    verbosity: int = 1  # -v: 0 warnings, 1 info, 2 debug, 3 debug + asyncio debug
    access_log: str | None = None  # path, or "-" for stdout; None means off
    log_fmt: str = "%(asctime)-15s %(levelname)-8s %(message)s"
    #: A logging config file (dictConfig JSON/YAML or fileConfig INI) replacing the above.
    log_config: str | None = None
    server_name: str | None = "narrows"  # "Server" response header; None: no header

    # -- metrics ---------------------------------------------------------------------------
    #: "HOST:PORT" of the Prometheus /metrics and /healthz listener; None: no metrics at all.
    metrics_bind: str | None = None

    # -- proxies ---------------------------------------------------------------------------
    proxy_headers: bool = False
    proxy_headers_host: str = "X-Forwarded-For"
    proxy_headers_port: str = "X-Forwarded-Port"
    #: Peers whose proxy headers are believed: IPs/CIDRs, "*" for any. Unix-socket peers
    #: are always trusted when ``proxy_headers`` is on.
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1")

    # -- HTTP limits and timeouts ----------------------------------------------------------
    limit_concurrency: int | None = None  # connections + tasks; beyond it new requests get 503
    max_header_size: int = 64 * 1024  # whole request head, bytes -> 431
    max_header_count: int = 100  # -> 431
    max_request_line: int = 8 * 1024  # method + target + version, bytes -> 414
    header_timeout: float = 10.0  # whole head must arrive within this (slowloris)
    keep_alive_timeout: float = 5.0  # idle keep-alive connection is closed after this
    http_timeout: float | None = None  # Daphne -t: app must finish a response within this
    #: Each BODY_TIMEOUT_WINDOW (64 KiB) of a request body must arrive within this (408):
    #: an idle timeout and a minimum rate (slow-body attacks) in one; None or 0 is off.
    body_timeout: float | None = 30.0
    #: A client that leaves the response unread this long (the transport over its
    #: high-water mark, or a close that cannot flush) is dropped; None or 0 is off.
    write_timeout: float | None = 60.0
    application_close_timeout: float = 10.0  # after disconnect, app gets this long to return
    graceful_timeout: float = 30.0  # drain period on SIGTERM before forcing
    flow_control_high_water: int = 64 * 1024  # transport write buffer high-water mark
    request_body_buffer: int = 64 * 1024  # read pauses when this much body is unconsumed

    # -- WebSocket -------------------------------------------------------------------------
    websocket: bool = True
    websocket_max_message_size: int = 1024 * 1024  # -> close 1009
    websocket_max_frame_size: int = 1024 * 1024  # -> close 1009
    websocket_max_queue: int = 32  # messages waiting for the app before reading pauses
    websocket_max_queue_bytes: int = 1024 * 1024  # ... or bytes of memory they hold
    #: Frames in one message (a 1 MiB message in 64-byte fragments) -> close 1009
    websocket_max_fragments: int = 16384
    #: After our close frame: how long the client has to answer with its own, then TCP is
    #: dropped (aborted if it has not read what we sent)
    websocket_close_timeout: float = 10.0
    websocket_compression: bool = True  # permessage-deflate (RFC 7692)
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 30.0
    websocket_timeout: float | None = 86400.0  # maximum lifetime; None/-1 is infinite
    websocket_connect_timeout: float | None = 5.0  # app must accept/close within this
    ws_protocols: tuple[str, ...] = ()  # Daphne --ws-protocol: offered subprotocols (informational)

    extra: dict[str, object] = field(default_factory=dict, compare=False)

    def replace(self, **changes: object) -> Config:
        """A copy with ``changes`` applied (``dataclasses.replace`` with a typed name)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
