"""The worker side of ``--workers``/``--reload``: one process serving the inherited sockets.

A worker is a fresh interpreter started by ``narrows.server.supervisor`` (multiprocessing's
*spawn* start method: fork+exec, so nothing of the parent's threads, event loop or imported
application leaks in, and ``--reload`` imports the new code). It runs the ordinary
``Server.serve(sockets)`` on the listening sockets the supervisor bound, plus one extra task
that talks to the supervisor over a socketpair, one byte per message:

``R``  ready: the server is accepting connections;
``.``  heartbeat, every ``interval`` seconds; since it is written by a task on the worker's
       event loop, a loop blocked by the application stops it, and the supervisor replaces
       the worker after ``worker_healthcheck_timeout``;
``M``  ``--max-requests`` reached: please start my replacement, then stop me.

When the supervisor disappears (its end of the socketpair closes), the worker drains and
exits on its own instead of living on as an orphan.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import socket
from collections.abc import Sequence

from narrows.server.app_loader import AppLoadError
from narrows.server.config import Config
from narrows.server.endpoints import BoundSocket, Endpoint, EndpointError, ssl_context_for
from narrows.server.logs import configure_logging
from narrows.server.loops import loop_factory
from narrows.server.metrics import Recorder
from narrows.server.metrics_export import Instruments
from narrows.server.server import Server

logger = logging.getLogger("narrows.server.workers")

#: Environment variables every worker process sets before importing the application.
WORKERS_ENV = "NARROWS_WORKERS"
WORKER_NUMBER_ENV = "NARROWS_WORKER_NUMBER"

READY = b"R"
HEARTBEAT = b"."
RECYCLE = b"M"


def heartbeat_interval(config: Config) -> float:
    """How often a worker reports: several times per health-check period, at most 1 s."""
    return max(0.05, min(1.0, config.worker_healthcheck_timeout / 5))


def request_limit(config: Config) -> int | None:
    """This worker's ``--max-requests`` plus its own share of ``--max-requests-jitter``.

    The jitter spreads recycling over time so that workers started together do not all
    restart together.
    """
    if not config.max_requests:
        return None
    return config.max_requests + random.randint(0, max(0, config.max_requests_jitter))


def worker_main(
    config: Config,
    listeners: Sequence[tuple[socket.socket, Endpoint]],
    channel: socket.socket,
    number: int = 1,
) -> None:
    """Entry point of a worker process (the ``multiprocessing.Process`` target); ``number``
    counts the workers the supervisor started (1 for the first)."""
    # For the application side, which never sees the Config (narrows.apps warns once, from
    # worker 1, about a channel layer that cannot span processes).
    os.environ[WORKERS_ENV] = str(config.workers)
    os.environ[WORKER_NUMBER_ENV] = str(number)
    # Own process group: Ctrl+C in a terminal signals the whole foreground group; only the
    # supervisor must get it, so that each worker receives exactly one SIGTERM (a second
    # signal means "stop draining, close now" to the server).
    os.setpgid(0, 0)
    configure_logging(config.verbosity, config.log_fmt, config.log_config)
    channel.setblocking(False)
    # --max-requests is the supervisor's business here: it starts the replacement first.
    # --metrics-bind: this worker's metrics go to the supervisor's multiprocess directory.
    recorder = Recorder(Instruments()) if config.metrics_bind is not None else None
    server = Server(config.replace(max_requests=None), metrics=recorder)
    try:
        bound = [BoundSocket(sock, end, ssl_context_for(config, end)) for sock, end in listeners]
        with asyncio.Runner(loop_factory=loop_factory(config.loop)) as runner:
            code = runner.run(_serve(server, config, bound, channel))
    except (AppLoadError, EndpointError, ValueError) as exc:
        logger.error("%s", exc)
        code = 1
    except KeyboardInterrupt:
        code = 0
    raise SystemExit(code)


async def _serve(
    server: Server, config: Config, bound: list[BoundSocket], channel: socket.socket
) -> int:
    reporter = asyncio.create_task(_report(server, config, channel))
    try:
        return await server.serve(list(bound))
    finally:
        reporter.cancel()
        channel.close()


async def _report(server: Server, config: Config, channel: socket.socket) -> None:
    while not server.started:  # application loaded, lifespan started, accepting
        await asyncio.sleep(0.02)
    assert server.state is not None
    limit = request_limit(config)
    interval = heartbeat_interval(config)
    recycle_sent = False
    if not _send(channel, READY):
        return
    while True:
        await asyncio.sleep(interval)
        message = HEARTBEAT
        if limit is not None and not recycle_sent and server.state.total_requests >= limit:
            logger.info(
                "Worker process [%d] served %d requests (--max-requests %d); replacing it",
                os.getpid(),
                server.state.total_requests,
                limit,
            )
            message, recycle_sent = RECYCLE, True
        if not _send(channel, message):
            return


def _send(channel: socket.socket, message: bytes) -> bool:
    """Report to the supervisor; if it is gone, drain and exit (returns False)."""
    try:
        channel.send(message)
    except BlockingIOError:  # supervisor busy; the next heartbeat will do
        return True
    except OSError:
        logger.warning("Supervisor went away; worker process [%d] shutting down", os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)
        return False
    return True
