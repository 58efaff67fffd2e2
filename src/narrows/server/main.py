"""``run(config, app=None) -> int``: the programmatic entry the CLI and runserver use.

Picks the event loop (``narrows.server.loops``), hands ``workers > 1`` and ``--reload`` to
``narrows.server.supervisor``, and turns startup errors into one clear log line and a
non-zero exit code.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable

from narrows.server import metrics_export, supervisor
from narrows.server.app_loader import AppLoadError
from narrows.server.config import Config
from narrows.server.endpoints import EndpointError
from narrows.server.logs import LogConfigError, configure_logging
from narrows.server.loops import LoopUnavailable, loop_factory
from narrows.server.metrics import Recorder
from narrows.server.metrics_export import MetricsError
from narrows.server.server import Server
from narrows.server.tls import TLSConfigError
from narrows.types import ASGIApp

__all__ = ["LoopUnavailable", "loop_factory", "run"]

logger = logging.getLogger("narrows.server")


def run(
    config: Config,
    app: ASGIApp | None = None,
    *,
    on_start: Callable[[Callable[[], None]], None] | None = None,
) -> int:
    """Serve ``config`` until stopped; the exit status. ``on_start`` (one process only) is
    given a function any thread may call to stop the server as SIGTERM would."""
    try:
        configure_logging(config.verbosity, config.log_fmt, config.log_config)
    except LogConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    if (config.workers > 1 or config.reload) and app is None:
        return supervisor.run(config)
    exporter: metrics_export.MetricsListener | None = None
    try:
        factory = loop_factory(config.loop)
        with asyncio.Runner(loop_factory=factory, debug=config.verbosity >= 3) as runner:
            recorder = None
            if config.metrics_bind is not None:
                recorder, exporter = _serve_metrics(config)
            server = Server(config, app, recorder)
            if exporter is not None:
                started = lambda: server.started  # noqa: E731
                exporter.healthy = metrics_export.loop_health(runner.get_loop, started)
            if on_start is not None:
                loop = runner.get_loop()

                def stop() -> None:
                    loop.call_soon_threadsafe(server.handle_exit)

                on_start(stop)
            return runner.run(server.serve())
    except (AppLoadError, EndpointError, TLSConfigError, LoopUnavailable, MetricsError) as exc:
        logger.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if exporter is not None:
            exporter.close()


def _serve_metrics(config: Config) -> tuple[Recorder, metrics_export.MetricsListener]:
    """One process: its own registry, and the listener on a thread of this process."""
    assert config.metrics_bind is not None
    host, port = metrics_export.parse_bind(config.metrics_bind, config)
    instruments = metrics_export.Instruments()
    listener = metrics_export.MetricsListener(host, port, instruments.registry, lambda: False)
    listener.start()
    logger.info("Metrics on %s/metrics, health check on %s/healthz", listener.url, listener.url)
    return Recorder(instruments), listener
