"""``--metrics-bind HOST:PORT``: the Prometheus metrics (prometheus_client) and their listener.

The listener is a separate socket, never the application's: ``GET /metrics`` is the
Prometheus text format, ``GET /healthz`` answers 200 ``ok`` while the server serves (one
process: its event loop answers within two seconds; ``--workers``: at least one worker
accepts connections) and 503 otherwise. It runs on a thread of its own, so a blocked event
loop cannot hide from it.

One process keeps its metrics in a registry of its own. Under ``--workers`` (and
``--reload``) the supervisor points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory
before it starts any worker; every worker writes its metrics there (prometheus_client's
multiprocess mode) and the supervisor's listener adds them up, so counters survive worker
restarts and the gauges count live workers only. A ``PROMETHEUS_MULTIPROC_DIR`` that is
already set is used as it is (and not removed).

prometheus_client is imported only here, and only when ``--metrics-bind`` is given: its
value class is chosen at import, after the multiprocess directory is known.
"""

from __future__ import annotations

import os
import shutil
import socket
import socketserver
import tempfile
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from narrows.server.config import DEFAULT_PORT, Config

__all__ = ["Instruments", "MetricsError", "MetricsListener", "SupervisorInstruments", "parse_bind"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Request duration buckets, seconds (prometheus_client's defaults, finer at the low end).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class MetricsError(RuntimeError):
    """``--metrics-bind`` cannot be served (bad address, the app's port, no prometheus_client)."""


def parse_bind(text: str, config: Config) -> tuple[str, int]:
    """``"127.0.0.1:9100"``, ``"[::1]:9100"``, ``":9100"`` or ``"9100"`` (on 127.0.0.1)."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise MetricsError(f"--metrics-bind expects HOST:PORT, got {text!r}") from None
    if not 0 < port < 65536:
        raise MetricsError(f"--metrics-bind port must be 1-65535, got {port}")
    app_ports = {int(p) for e in config.endpoints for p in _tcp_ports(e)}
    if config.port is not None or not (config.endpoints or config.unix_socket):
        app_ports.add(config.port or DEFAULT_PORT)
    if port in app_ports:
        raise MetricsError(
            f"--metrics-bind {text} is the application's port; metrics need a port of "
            "their own (e.g. --metrics-bind 127.0.0.1:9100)"
        )
    return host, port


def _tcp_ports(endpoint: str) -> Iterable[str]:
    for part in endpoint.split(":")[1:]:
        name, _, value = part.partition("=")
        if (name == "port" and value.isdigit()) or (not value and name.isdigit()):
            yield value or name


def prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise MetricsError(
            "--metrics-bind needs prometheus_client: pip install 'narrows[metrics]'"
        ) from exc
    return prometheus_client


def use_multiprocess_dir() -> str | None:
    """Set ``PROMETHEUS_MULTIPROC_DIR`` for this process and its workers; the directory
    to remove at exit, or None when it was set already."""
    if os.environ.get(MULTIPROC_ENV):
        return None
    path = tempfile.mkdtemp(prefix="narrows-metrics-")
    os.environ[MULTIPROC_ENV] = path
    return path


def remove_multiprocess_dir(path: str | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
        os.environ.pop(MULTIPROC_ENV, None)


def exposition_registry(multiprocess: bool, own: Any) -> Any:
    """What ``/metrics`` shows: ``own`` in one process; every process's files otherwise."""
    if not multiprocess:
        return own
    client = prometheus()
    from prometheus_client import multiprocess as mp

    registry = client.CollectorRegistry()
    mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def mark_process_dead(pid: int) -> None:
    """A worker exited: its live gauges (in flight, open WebSockets) stop counting."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class Instruments:
    """The metrics narrows exports (names and meanings: docs/metrics.md)."""

    def __init__(self, registry: Any | None = None) -> None:
        client = prometheus()
        registry = self.registry = registry if registry is not None else client.CollectorRegistry()
        counter, gauge, histogram = client.Counter, client.Gauge, client.Histogram
        self.requests = counter(
            "narrows_http_requests", "HTTP requests answered, by method and status class",
            ["method", "status"], registry=registry,
        )  # fmt: skip
        self.durations = histogram(
            "narrows_http_request_duration_seconds",
            "Time from the request head to the end of the response, by method and status class",
            ["method", "status"], buckets=DURATION_BUCKETS, registry=registry,
        )  # fmt: skip
        self.in_flight = gauge(
            "narrows_http_requests_in_flight", "HTTP requests being answered now",
            registry=registry, multiprocess_mode="livesum",
        )  # fmt: skip
        self.refused = counter(
            "narrows_http_requests_refused",
            "HTTP requests answered 503 because of --limit-concurrency", registry=registry,
        )  # fmt: skip
        self.websockets_open = gauge(
            "narrows_websocket_connections_open", "WebSocket connections accepted and open",
            registry=registry, multiprocess_mode="livesum",
        )  # fmt: skip
        self.websocket_messages = counter(
            "narrows_websocket_messages", "WebSocket messages, in (from clients) and out",
            ["direction"], registry=registry,
        )  # fmt: skip
        self.bytes = counter(
            "narrows_bytes",
            "Payload bytes: HTTP request/response bodies and WebSocket messages, in and out",
            ["protocol", "direction"], registry=registry,
        )  # fmt: skip
        self.layer_messages = counter(
            "narrows_channel_layer_messages",
            "Channel-layer messages sent (a group_send counts each member) and received",
            ["layer", "direction"], registry=registry,
        )  # fmt: skip
        self.layer_dropped = counter(
            "narrows_channel_layer_messages_dropped",
            "Channel-layer messages not delivered, by reason (full, expired, evicted)",
            ["layer", "reason"], registry=registry,
        )  # fmt: skip

    def duration_bounds(self) -> tuple[float, ...]:
        """The histogram's bucket upper bounds, ``+Inf`` last (``Recorder`` buckets by them)."""
        return (*DURATION_BUCKETS, float("inf"))

    def add_durations(self, method: str, status: str, seconds: float, counts: list[float]) -> None:
        """Add pre-bucketed observations: ``counts[i]`` durations fell in bucket ``i``.

        prometheus_client has no public call for a batch, so this adds to the child's
        bucket and sum values, which is what ``observe()`` does one duration at a time
        (``tests/server/test_metrics.py`` checks the exposed buckets against real ones).
        """
        child = self.durations.labels(method, status)
        child._sum.inc(seconds)
        for bucket, count in zip(child._buckets, counts, strict=True):
            if count:
                bucket.inc(count)


class SupervisorInstruments:
    """The supervisor's own metrics (``--workers``, ``--reload``)."""

    def __init__(self) -> None:
        client = prometheus()
        registry = self.registry = client.CollectorRegistry()
        counter, gauge = client.Counter, client.Gauge
        self.worker_restarts = counter(
            "narrows_worker_restarts",
            "Worker processes replaced: died (crashed or killed as unresponsive) or recycled "
            "(--max-requests, --reload, SIGHUP)", ["reason"], registry=registry,
        )  # fmt: skip
        self.workers = gauge(
            "narrows_workers", "Worker processes accepting connections",
            registry=registry, multiprocess_mode="mostrecent",
        )  # fmt: skip


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
        pass


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    address_family = socket.AF_INET


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class MetricsListener:
    """``/metrics`` and ``/healthz`` on ``(host, port)``, served from a daemon thread."""

    def __init__(self, host: str, port: int, registry: Any, healthy: Callable[[], bool]) -> None:
        client = prometheus()
        self.registry = registry
        self.healthy = healthy
        self._metrics_app = client.make_wsgi_app(registry)
        server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
        try:
            self._server = make_server(
                host, port, self._app, server_class=server_class, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise MetricsError(
                f"Cannot listen on {host}:{port} for --metrics-bind: {exc.strerror or exc}"
            ) from exc
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="narrows-metrics", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            ok = self._check()
            start_response(
                "200 OK" if ok else "503 Service Unavailable",
                [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")],
            )
            return [b"ok\n" if ok else b"unavailable\n"]
        if path in ("/metrics", "/"):
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"Not Found: this listener serves /metrics and /healthz\n"]

    def _check(self) -> bool:
        try:
            return bool(self.healthy())
        except Exception:
            return False


def loop_health(loop_ref: Callable[[], Any], started: Callable[[], bool]) -> Callable[[], bool]:
    """Healthy while the server has started and its event loop runs a callback within 2 s."""

    def healthy() -> bool:
        loop = loop_ref()
        if loop is None or not started() or loop.is_closed():
            return False
        answered = threading.Event()
        try:
            loop.call_soon_threadsafe(answered.set)
        except RuntimeError:  # the loop has closed meanwhile
            return False
        return answered.wait(2.0)

    return healthy
