"""The ``narrows`` command: Daphne's command line plus the options Daphne lacks.

``narrows [options] module.path:application``. Every ``Config`` field has a flag; Daphne's
spellings work unchanged (``-b -p -u --fd -e -v -t --access-log --proxy-headers ...``) and
every long option is accepted with dashes or underscores (``--websocket_timeout`` and
``--websocket-timeout``). With no endpoint at all the server listens on 127.0.0.1:8000.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import sys
from collections.abc import Sequence
from typing import Any

from narrows import __version__
from narrows.server.config import Config
from narrows.server.http import compiled as http_compiled

__all__ = ["build_config", "build_parser", "main"]

_DEFAULTS = Config()
_TUPLE_FIELDS = {
    "file_descriptors",
    "endpoints",
    "forwarded_allow_ips",
    "ws_protocols",
    "reload_dirs",
}


def _default(name: str) -> str:
    value = getattr(_DEFAULTS, name)
    if value == "":
        return "''"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


def _octal(text: str) -> int:
    try:
        return int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected octal permissions like 660, got {text!r}"
        ) from None


def _optional_float(text: str) -> float | None:
    if text.strip().lower() in ("none", "off", ""):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of threads, got {text!r}")
    return value


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


#: Attribute on an argparse action: its underscore spellings (accepted, not shown in help).
_ALIASES = "narrows_aliases"


def spellings(flag: str) -> list[str]:
    """``flag`` and its twin: ``--http-timeout`` and ``--http_timeout`` (Daphne's style)."""
    if not flag.startswith("--"):
        return [flag]
    body = flag[2:]
    dashed, underscored = "--" + body.replace("_", "-"), "--" + body.replace("-", "_")
    return [dashed] if dashed == underscored else [dashed, underscored]


class _Group:
    """Adds options to an argparse group, registering dash and underscore spellings."""

    def __init__(self, group: argparse._ArgumentGroup) -> None:
        self.group = group

    def add(self, *flags: str, help: str, default_of: str | None = None, **kw: Any) -> None:
        names: list[str] = []
        for flag in flags:
            names += [name for name in spellings(flag) if name not in names]
        if default_of is not None:
            help = f"{help} (default: {_default(default_of)})"
        if "metavar" not in kw and "choices" not in kw and kw.get("action") is None:
            kind = kw.get("type")
            kw["metavar"] = "N" if kind is int else "SECONDS" if kind is not None else None
        action = self.group.add_argument(*names, help=help, **kw)
        shown = {flag.replace("_", "-") if flag.startswith("--") else flag for flag in flags}
        setattr(action, _ALIASES, [name for name in names if name not in shown])


class _HelpFormatter(argparse.HelpFormatter):
    """Lists each option once, by its dashed spellings (the underscore twins still work)."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        hidden = getattr(action, _ALIASES, ())
        if not hidden:
            return super()._format_action_invocation(action)
        shown = copy.copy(action)
        shown.option_strings = [s for s in action.option_strings if s not in hidden]
        return super()._format_action_invocation(shown)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:  # laid out by hand (the epilog's command list)
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def build_parser(epilog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="narrows",
        usage="narrows [options] module.path:application",
        description="HTTP/1.1 and WebSocket ASGI server (Daphne-compatible command line). "
        "Every long option is also accepted with underscores (--http_timeout).",
        epilog=epilog,
        formatter_class=_HelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    core = "compiled" if http_compiled() else "pure Python"
    parser.add_argument(
        "--version", action="version", version=f"narrows {__version__} (HTTP core: {core})"
    )
    parser.add_argument(
        "application", nargs="?", help="the ASGI application, as module.path:attribute"
    )
    _application_options(_Group(parser.add_argument_group("application")))
    _socket_options(_Group(parser.add_argument_group("where to listen")))
    _tls_options(_Group(parser.add_argument_group("TLS")))
    _process_options(_Group(parser.add_argument_group("processes")))
    _logging_options(_Group(parser.add_argument_group("logging")))
    _metrics_options(_Group(parser.add_argument_group("metrics")))
    _proxy_options(_Group(parser.add_argument_group("proxies")))
    _http_options(_Group(parser.add_argument_group("HTTP limits and timeouts")))
    _websocket_options(_Group(parser.add_argument_group("WebSocket")))
    return parser


def _application_options(g: _Group) -> None:
    g.add(
        "--app-dir",
        dest="app_dir",
        metavar="DIR",
        default_of="app_dir",
        help="directory put first on sys.path before importing the application",
    )
    g.add(
        "--root-path",
        dest="root_path",
        metavar="PATH",
        default_of="root_path",
        help="ASGI root_path (mount point behind a proxy)",
    )
    g.add(
        "--lifespan",
        dest="lifespan",
        choices=("auto", "on", "off"),
        default_of="lifespan",
        help="ASGI lifespan protocol",
    )


def _socket_options(g: _Group) -> None:
    g.add(
        "-b",
        "--bind",
        dest="host",
        metavar="ADDRESS",
        help="TCP address to listen on (127.0.0.1 when no endpoint is given)",
    )
    g.add(
        "-p",
        "--port",
        dest="port",
        type=int,
        metavar="PORT",
        help="TCP port to listen on (8000 when no endpoint is given)",
    )
    g.add(
        "-u",
        "--unix-socket",
        dest="unix_socket",
        metavar="PATH",
        help="unix socket path to listen on",
    )
    g.add(
        "--fd",
        dest="file_descriptors",
        type=int,
        action="append",
        metavar="FD",
        help="listen on an inherited socket file descriptor (repeatable)",
    )
    g.add(
        "-e",
        "--endpoint",
        dest="endpoints",
        action="append",
        metavar="ENDPOINT",
        help="Daphne endpoint string, e.g. tcp:port=8000:interface=127.0.0.1, unix:/path, "
        "fd:fileno=0, ssl:port=8443:privateKey=key.pem:certKey=cert.pem (repeatable)",
    )
    g.add(
        "--uds-permissions",
        dest="uds_permissions",
        type=_octal,
        metavar="MODE",
        help="permissions of the unix socket file, octal (e.g. 660)",
    )
    g.add("--backlog", dest="backlog", type=int, default_of="backlog", help="listen backlog")


def _tls_options(g: _Group) -> None:
    g.add("--ssl-certfile", dest="ssl_certfile", metavar="PATH", help="TLS certificate (PEM)")
    g.add("--ssl-keyfile", dest="ssl_keyfile", metavar="PATH", help="TLS private key (PEM)")
    g.add(
        "--ssl-keyfile-password",
        dest="ssl_keyfile_password",
        metavar="PASSWORD",
        help="password of the TLS private key",
    )
    g.add("--ssl-ca-certs", dest="ssl_ca_certs", metavar="PATH", help="CA certificates file")


def _process_options(g: _Group) -> None:
    g.add(
        "--workers",
        dest="workers",
        type=int,
        default_of="workers",
        help="number of worker processes",
    )
    g.add(
        "--max-requests",
        dest="max_requests",
        type=int,
        help="restart a worker after this many requests",
    )
    g.add(
        "--max-requests-jitter",
        dest="max_requests_jitter",
        type=int,
        default_of="max_requests_jitter",
        help="random extra requests before a restart",
    )
    g.add(
        "--worker-healthcheck-timeout",
        dest="worker_healthcheck_timeout",
        type=float,
        default_of="worker_healthcheck_timeout",
        help="seconds before a silent worker is killed",
    )
    g.add(
        "--threads",
        dest="threads",
        type=_positive_int,
        metavar="N",
        help="threads per worker for Django's sync views (narrows.asgi; sets NARROWS_THREADS; "
        "default: the NARROWS_THREADS setting, ASGI_THREADS, else 8)",
    )
    g.add("--reload", dest="reload", action="store_true", help="restart when code changes")
    g.add(
        "--reload-dir",
        dest="reload_dirs",
        action="append",
        metavar="DIR",
        help="directory to watch with --reload (repeatable)",
    )
    g.add(
        "--loop",
        dest="loop",
        choices=("auto", "asyncio", "uvloop"),
        default_of="loop",
        help="event loop implementation",
    )


def _logging_options(g: _Group) -> None:
    g.add(
        "-v",
        "--verbosity",
        dest="verbosity",
        type=int,
        default_of="verbosity",
        help="0 warnings, 1 info, 2 debug, 3 debug with asyncio debug mode",
    )
    g.add(
        "--access-log",
        dest="access_log",
        metavar="PATH",
        help="write an access log to PATH, or '-' for stdout (default: off)",
    )
    g.add(
        "--log-fmt",
        dest="log_fmt",
        metavar="FORMAT",
        help="logging format string (default: '%%(asctime)-15s %%(levelname)-8s %%(message)s')",
    )
    g.add(
        "--log-config",
        dest="log_config",
        metavar="FILE",
        help="logging configuration: dictConfig as .json or .yaml, or an INI fileConfig "
        "(replaces -v and --log-fmt)",
    )
    g.add(
        "-s",
        "--server-name",
        dest="server_name",
        metavar="NAME",
        default_of="server_name",
        help="value of the Server response header",
    )
    g.add(
        "--no-server-name",
        dest="server_name",
        action="store_const",
        const=None,
        help="send no Server header",
    )


def _metrics_options(g: _Group) -> None:
    g.add(
        "--metrics-bind",
        dest="metrics_bind",
        metavar="HOST:PORT",
        help="serve Prometheus metrics (/metrics) and a health check (/healthz) on this "
        "address, a listener of its own; needs narrows[metrics] (default: off)",
    )


def _proxy_options(g: _Group) -> None:
    g.add(
        "--proxy-headers",
        dest="proxy_headers",
        action="store_true",
        help="take the client address and scheme from X-Forwarded-* headers of trusted peers",
    )
    g.add(
        "--proxy-headers-host",
        dest="proxy_headers_host",
        metavar="HEADER",
        default_of="proxy_headers_host",
        help="header holding the client address",
    )
    g.add(
        "--proxy-headers-port",
        dest="proxy_headers_port",
        metavar="HEADER",
        default_of="proxy_headers_port",
        help="header holding the client port",
    )
    g.add(
        "--forwarded-allow-ips",
        dest="forwarded_allow_ips",
        type=_comma_list,
        metavar="IPS",
        default_of="forwarded_allow_ips",
        help="comma-separated addresses/networks trusted to send proxy headers, '*' for any "
        "(unix-socket peers are always trusted)",
    )


def _http_options(g: _Group) -> None:
    g.add(
        "--limit-concurrency",
        dest="limit_concurrency",
        type=int,
        help="answer 503 beyond this many connections or running requests",
    )
    g.add(
        "--max-header-size",
        dest="max_header_size",
        type=int,
        default_of="max_header_size",
        help="largest request header block in bytes (431 beyond)",
    )
    g.add(
        "--max-header-count",
        dest="max_header_count",
        type=int,
        default_of="max_header_count",
        help="most request headers (431 beyond)",
    )
    g.add(
        "--max-request-line",
        dest="max_request_line",
        type=int,
        default_of="max_request_line",
        help="longest request target in bytes (414 beyond)",
    )
    g.add(
        "--header-timeout",
        dest="header_timeout",
        type=float,
        default_of="header_timeout",
        help="seconds a client has to send a whole request head",
    )
    g.add(
        "--keep-alive-timeout",
        dest="keep_alive_timeout",
        type=float,
        default_of="keep_alive_timeout",
        help="idle keep-alive connections close after this",
    )
    g.add(
        "-t",
        "--http-timeout",
        dest="http_timeout",
        type=_optional_float,
        default_of="http_timeout",
        help="seconds the application has to answer (503 after)",
    )
    g.add(
        "--body-timeout",
        dest="body_timeout",
        type=_optional_float,
        default_of="body_timeout",
        help="seconds each 64 KiB of a request body may take to arrive (408 after; 0: off)",
    )
    g.add(
        "--write-timeout",
        dest="write_timeout",
        type=_optional_float,
        default_of="write_timeout",
        help="seconds a client may leave a response unread before it is dropped (0: off)",
    )
    g.add(
        "--application-close-timeout",
        dest="application_close_timeout",
        type=float,
        default_of="application_close_timeout",
        help="seconds an application gets to return after its client went away",
    )
    g.add(
        "--graceful-timeout",
        dest="graceful_timeout",
        type=float,
        default_of="graceful_timeout",
        help="seconds to drain requests on shutdown",
    )
    g.add(
        "--flow-control-high-water",
        dest="flow_control_high_water",
        type=int,
        default_of="flow_control_high_water",
        help="write buffer size before send() waits",
    )
    g.add(
        "--request-body-buffer",
        dest="request_body_buffer",
        type=int,
        default_of="request_body_buffer",
        help="unread request body bytes before reading pauses",
    )


def _websocket_options(g: _Group) -> None:
    g.add(
        "--no-websocket",
        dest="websocket",
        action="store_const",
        const=False,
        help="serve WebSocket upgrade requests as plain HTTP",
    )
    g.add(
        "--websocket-max-message-size",
        dest="websocket_max_message_size",
        type=int,
        default_of="websocket_max_message_size",
        help="largest message (close 1009 beyond)",
    )
    g.add(
        "--websocket-max-frame-size",
        dest="websocket_max_frame_size",
        type=int,
        default_of="websocket_max_frame_size",
        help="largest frame (close 1009 beyond)",
    )
    g.add(
        "--websocket-max-queue",
        dest="websocket_max_queue",
        type=int,
        default_of="websocket_max_queue",
        help="messages queued for the app before reading pauses",
    )
    g.add(
        "--websocket-max-queue-bytes",
        dest="websocket_max_queue_bytes",
        type=int,
        default_of="websocket_max_queue_bytes",
        help="bytes of memory queued for the app before reading pauses",
    )
    g.add(
        "--websocket-max-fragments",
        dest="websocket_max_fragments",
        type=int,
        default_of="websocket_max_fragments",
        help="frames in one message (close 1009 beyond)",
    )
    g.add(
        "--websocket-close-timeout",
        dest="websocket_close_timeout",
        type=float,
        default_of="websocket_close_timeout",
        help="seconds the client has to answer our close frame before TCP is dropped",
    )
    g.add(
        "--no-websocket-compression",
        dest="websocket_compression",
        action="store_const",
        const=False,
        help="disable permessage-deflate",
    )
    g.add(
        "--ping-interval",
        dest="ping_interval",
        type=_optional_float,
        default_of="ping_interval",
        help="seconds between keepalive pings",
    )
    g.add(
        "--ping-timeout",
        dest="ping_timeout",
        type=_optional_float,
        default_of="ping_timeout",
        help="seconds to wait for a pong before closing",
    )
    g.add(
        "--websocket-timeout",
        dest="websocket_timeout",
        type=_optional_float,
        default_of="websocket_timeout",
        help="maximum WebSocket lifetime, -1 for infinite",
    )
    g.add(
        "--websocket-connect-timeout",
        dest="websocket_connect_timeout",
        type=_optional_float,
        default_of="websocket_connect_timeout",
        help="seconds the application has to accept or reject a WebSocket",
    )
    g.add(
        "--ws-protocol",
        dest="ws_protocols",
        nargs="*",
        metavar="PROTOCOL",
        help="WebSocket subprotocols the server advertises",
    )


def build_config(argv: Sequence[str] | None = None, epilog: str | None = None) -> Config:
    parser = build_parser(epilog)
    namespace = parser.parse_args(argv)
    values: dict[str, Any] = vars(namespace)
    application = values.pop("application", None)
    if not application:
        parser.error("the following arguments are required: application")
    values["application"] = application
    for name in _TUPLE_FIELDS & values.keys():
        values[name] = tuple(values[name] or ())
    fields = {f.name for f in dataclasses.fields(Config)}
    unknown = set(values) - fields
    if unknown:  # a flag whose dest is not a Config field is a bug in this module
        raise RuntimeError(f"CLI options without a Config field: {sorted(unknown)}")
    return Config(**values)


def main(argv: Sequence[str] | None = None, epilog: str | None = None) -> None:
    """Serve; ``epilog`` ends ``--help`` (the top-level command lists its other commands)."""
    config = build_config(argv, epilog)
    if config.threads is not None:
        # For narrows.asgi in this process and in every worker it starts.
        os.environ["NARROWS_THREADS"] = str(config.threads)
    from narrows.server.main import run

    sys.exit(run(config))
