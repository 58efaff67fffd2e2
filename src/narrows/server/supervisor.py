"""``--workers N`` and ``--reload``: one parent process that binds and supervises workers.

The parent binds every listening socket once (through ``narrows.server.endpoints``), then
starts worker processes (``narrows.server.workers``) that all accept on those inherited
sockets. The kernel queues connections on the shared socket while a worker is being
replaced, so restarts refuse nothing. The parent never imports the application.

Signals, as gunicorn and uvicorn users expect them:

=============  ==========================================================================
SIGTERM/INT    graceful shutdown: every worker drains (``--graceful-timeout``), exit 0;
               a second signal tells the workers to stop draining and close now
SIGHUP         rolling restart: for each worker, start a new one, wait until it accepts,
               then drain the old one; one worker at a time
SIGTTIN/TTOU   one worker more / one worker fewer (never fewer than one)
=============  ==========================================================================

Workers that die are restarted with exponential backoff; a worker that stops sending
heartbeats for ``--worker-healthcheck-timeout`` seconds (a blocked event loop) is killed and
replaced; a worker that reaches ``--max-requests`` is replaced the same way as on SIGHUP.
If the very first workers cannot boot (an import error in the application, say), the
supervisor exits with status 1 rather than restarting them forever; with ``--reload`` it
waits for the next code change instead.
"""

from __future__ import annotations

import enum
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess

from narrows.server import metrics_export, workers
from narrows.server.config import Config
from narrows.server.endpoints import Endpoint, EndpointError, bind_all, config_endpoints
from narrows.server.reload import ChangeWatcher

logger = logging.getLogger("narrows.server.supervisor")

#: A worker that lived at least this long resets the crash backoff.
STABLE_AFTER = 10.0
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 15.0
#: Least time a worker gets to import the application and finish lifespan startup (a
#: Django project on a busy machine can take several seconds; heartbeats start after).
MIN_STARTUP_TIMEOUT = 60.0
#: Extra time a draining worker gets on top of ``graceful_timeout`` before SIGKILL.
KILL_MARGIN = 5.0
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
HANDLED_SIGNALS = (*SHUTDOWN_SIGNALS, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)


class WorkerState(enum.Enum):
    STARTING = "starting"  # spawned, not yet accepting
    SERVING = "serving"  # sent its ready message; heartbeats expected
    STOPPING = "stopping"  # sent SIGTERM by us; draining


class Phase(enum.Enum):
    RUNNING = "running"
    SHUTTING_DOWN = "shutting down"


@dataclass(eq=False)
class Worker:
    process: BaseProcess
    channel: socket.socket  # our end of the heartbeat socketpair
    started_at: float
    state: WorkerState = WorkerState.STARTING
    last_seen: float = 0.0
    ready_at: float | None = None
    stop_deadline: float | None = None
    #: During a rolling restart: the old worker to stop once this one is ready (then None).
    replaces: Worker | None = None
    #: The supervisor's ``code_version`` when this worker was started (``--reload``).
    code_version: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def stop(self, now: float, grace: float) -> None:
        if self.state is WorkerState.STOPPING:
            return
        self.state = WorkerState.STOPPING
        self.stop_deadline = now + grace + KILL_MARGIN
        _signal(self, signal.SIGTERM)


def _signal(worker: Worker, signum: int) -> None:
    try:
        os.kill(worker.pid, signum)
    except ProcessLookupError:
        pass


@dataclass(eq=False)
class Supervisor:
    config: Config
    listeners: list[tuple[socket.socket, Endpoint]]
    target: int = 1
    phase: Phase = Phase.RUNNING
    workers: list[Worker] = field(default_factory=list)
    #: Old workers still waiting for their turn in a rolling restart.
    roll_queue: list[Worker] = field(default_factory=list)
    failures: int = 0
    next_spawn_at: float = 0.0
    ever_ready: bool = False
    boot_failed: bool = False
    watcher: ChangeWatcher | None = None
    exit_code: int = 0
    spawned: int = 0  # workers started so far; each new one gets the next number
    #: Code changes seen so far (``--reload``): a worker started before the latest one
    #: runs stale code, and its failing to boot says nothing about the current code.
    code_version: int = 0
    metrics: metrics_export.SupervisorInstruments | None = None  # --metrics-bind

    def __post_init__(self) -> None:
        self.target = max(1, self.config.workers)
        self.startup_timeout = max(self.config.worker_healthcheck_timeout, MIN_STARTUP_TIMEOUT)
        self._context = multiprocessing.get_context("spawn")
        self._selector = selectors.DefaultSelector()
        self._signal_r, self._signal_w = socket.socketpair()
        self._old_wakeup = -1
        self._old_handlers: dict[int, object] = {}

    # -- main loop --------------------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        if self.config.reload:
            self.watcher = ChangeWatcher(self.config.reload_dirs or (self.config.app_dir,))
            self.watcher.start()
            self._selector.register(self.watcher.fileno(), selectors.EVENT_READ, "reload")
        logger.info(
            "Started supervisor process [%d] for %d worker%s",
            os.getpid(),
            self.target,
            "" if self.target == 1 else "s",
        )
        try:
            while self.phase is Phase.RUNNING or self.workers:
                self._tick(time.monotonic())
                for key, _events in self._selector.select(timeout=0.1):
                    self._on_readable(key.data)
        finally:
            self._cleanup()
        logger.info("Supervisor process [%d] finished", os.getpid())
        return self.exit_code

    def serving(self) -> bool:
        """At least one worker accepts connections (``/healthz``; read from another thread)."""
        return self.phase is Phase.RUNNING and any(
            w.state is WorkerState.SERVING for w in list(self.workers)
        )

    def _tick(self, now: float) -> None:
        if self.metrics is not None:
            self.metrics.workers.set(sum(w.state is WorkerState.SERVING for w in self.workers))
        self._reap(now)
        self._check_health(now)
        if self.phase is Phase.RUNNING:
            self._advance_rolling(now)
            self._scale(now)

    def _on_readable(self, data: object) -> None:
        if data == "signal":
            self._read_signals()
        elif data == "reload":
            self._on_code_change()
        elif isinstance(data, Worker):
            self._read_channel(data)

    # -- spawning and reaping ---------------------------------------------------------------

    def _spawn(self, now: float, replaces: Worker | None = None) -> Worker:
        ours, theirs = socket.socketpair()
        self.spawned += 1
        process = self._context.Process(
            target=workers.worker_main,
            args=(self.config, self.listeners, theirs, self.spawned),
            name="narrows-worker",
        )
        process.start()
        theirs.close()
        ours.setblocking(False)
        worker = Worker(
            process,
            ours,
            started_at=now,
            last_seen=now,
            replaces=replaces,
            code_version=self.code_version,
        )
        if replaces is not None and self.metrics is not None:
            self.metrics.worker_restarts.labels("recycled").inc()
        self.workers.append(worker)
        self._selector.register(ours, selectors.EVENT_READ, worker)
        logger.info("Started worker process [%d]", worker.pid)
        return worker

    def _reap(self, now: float) -> None:
        for worker in [w for w in self.workers if not w.process.is_alive()]:
            self._forget(worker)
            if self.metrics is not None:
                metrics_export.mark_process_dead(worker.pid)
            code = worker.process.exitcode
            if worker.state is WorkerState.STOPPING:
                logger.info("Worker process [%d] stopped (exit code %s)", worker.pid, code)
                continue
            lived = now - worker.started_at
            if worker.ready_at is None and code is not None and code > 0:
                # It exited on its own while starting: the application (or its lifespan
                # startup) failed, and a restart would fail the same way.
                logger.error(
                    "Worker process [%d] exited with code %s before it was ready", worker.pid, code
                )
                self._on_boot_failure(worker)
            else:
                logger.error(
                    "Worker process [%d] died unexpectedly (exit code %s) after %.1fs",
                    worker.pid,
                    code,
                    lived,
                )
            if self.phase is Phase.RUNNING:
                self._backoff(now, lived)
                if self.metrics is not None:
                    self.metrics.worker_restarts.labels("died").inc()

    def _on_boot_failure(self, worker: Worker) -> None:
        if worker.code_version < self.code_version:
            # Started from code changed since (a fix saved while the broken version was
            # still booting): the rolling restart for the newer change goes on.
            logger.error(
                "Worker process [%d] ran code that has changed since; starting the new code",
                worker.pid,
            )
            return
        if worker.replaces is not None:
            # A replacement that cannot boot leaves the old worker serving (new code broken).
            logger.error(
                "Keeping worker process [%d]: its replacement failed to start",
                worker.replaces.pid,
            )
            self.roll_queue.clear()
            if self.config.reload:
                self.boot_failed = True
            return
        if self.config.reload:
            self.boot_failed = True
            logger.error("Waiting for a code change before starting workers again")
        elif not self.ever_ready:
            logger.error("Workers cannot start; shutting down")
            self.exit_code = 1
            self._begin_shutdown(time.monotonic())

    def _backoff(self, now: float, lived: float) -> None:
        self.failures = 0 if lived >= STABLE_AFTER else self.failures + 1
        delay = (
            0.0
            if self.failures <= 1
            else min(BACKOFF_FIRST * 2 ** (self.failures - 2), BACKOFF_MAX)
        )
        self.next_spawn_at = now + delay
        if delay:
            logger.warning("Restarting worker in %.1fs (%d quick failures)", delay, self.failures)

    def _forget(self, worker: Worker) -> None:
        self.workers.remove(worker)
        if worker.channel.fileno() in self._selector.get_map():
            self._selector.unregister(worker.channel)
        worker.channel.close()
        worker.process.join(timeout=0)
        for other in self.workers:
            if other.replaces is worker:
                other.replaces = None

    def _scale(self, now: float) -> None:
        if self.boot_failed:
            return
        active = [w for w in self.workers if w.state is not WorkerState.STOPPING]
        # A replacement in a rolling restart is extra, on top of the worker it replaces.
        counted = len(active) - sum(1 for w in active if w.replaces is not None)
        if counted < self.target and now >= self.next_spawn_at:
            self._spawn(now)
        elif counted > self.target:
            newest = max(active, key=lambda w: w.started_at)
            logger.info("Stopping worker process [%d] (%d workers wanted)", newest.pid, self.target)
            newest.stop(now, self.config.graceful_timeout)

    # -- heartbeats and health ----------------------------------------------------------------

    def _read_channel(self, worker: Worker) -> None:
        try:
            data = worker.channel.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the worker closed its end; _reap notices the exit
            self._selector.unregister(worker.channel)
            return
        now = time.monotonic()
        worker.last_seen = now
        if workers.READY in data and worker.state is WorkerState.STARTING:
            worker.state, worker.ready_at, self.ever_ready = WorkerState.SERVING, now, True
            logger.info("Worker process [%d] is accepting connections", worker.pid)
            if worker.replaces is not None:
                worker.replaces.stop(now, self.config.graceful_timeout)
                worker.replaces = None
        recycle = workers.RECYCLE in data and worker.state is WorkerState.SERVING
        if recycle and worker not in self.roll_queue:
            self.roll_queue.append(worker)

    def _check_health(self, now: float) -> None:
        for worker in self.workers:
            if worker.state is WorkerState.STOPPING:
                if worker.stop_deadline is not None and now > worker.stop_deadline:
                    logger.error(
                        "Worker process [%d] did not drain in time; killing it", worker.pid
                    )
                    _signal(worker, signal.SIGKILL)
                    worker.stop_deadline = None
                continue
            if worker.state is WorkerState.STARTING:
                what, timeout = "start", self.startup_timeout
            else:
                what, timeout = "send a heartbeat", self.config.worker_healthcheck_timeout
            if now - worker.last_seen > timeout:
                logger.error(
                    "Worker process [%d] did not %s within %.1fs; killing it",
                    worker.pid,
                    what,
                    timeout,
                )
                _signal(worker, signal.SIGKILL)
                worker.last_seen = now  # reaped on a later tick once the kill lands

    # -- rolling restarts ---------------------------------------------------------------------

    def _start_rolling(self) -> None:
        self.roll_queue = [w for w in self.workers if w.state is not WorkerState.STOPPING]
        logger.info("Rolling restart of %d workers", len(self.roll_queue))

    def _advance_rolling(self, now: float) -> None:
        if any(w.replaces is not None for w in self.workers):
            return  # a replacement is still starting
        draining = any(w.state is WorkerState.STOPPING for w in self.workers)
        if draining and self.roll_queue:
            return  # the previous old worker is still draining: one at a time
        while self.roll_queue:
            old = self.roll_queue.pop(0)
            if old in self.workers and old.state is not WorkerState.STOPPING:
                self._spawn(now, replaces=old)
                return

    def _on_code_change(self) -> None:
        assert self.watcher is not None
        changes = self.watcher.take_changes()
        if not changes or self.phase is not Phase.RUNNING:
            return
        shown = ", ".join(os.path.relpath(p) for p in changes[:5])
        logger.warning("Detected changes in %s; reloading", shown)
        self.code_version += 1
        self.boot_failed = False
        self.failures, self.next_spawn_at = 0, 0.0
        self._start_rolling()

    # -- signals ------------------------------------------------------------------------------

    def _install_signals(self) -> None:
        self._signal_r.setblocking(False)
        self._signal_w.setblocking(False)
        self._old_wakeup = signal.set_wakeup_fd(self._signal_w.fileno())
        self._old_handlers = {sig: signal.signal(sig, _ignore) for sig in HANDLED_SIGNALS}
        self._selector.register(self._signal_r, selectors.EVENT_READ, "signal")

    def _read_signals(self) -> None:
        try:
            data = self._signal_r.recv(4096)
        except BlockingIOError:
            return
        now = time.monotonic()
        for signum in data:
            self._on_signal(signum, now)

    def _on_signal(self, signum: int, now: float) -> None:
        if signum in SHUTDOWN_SIGNALS:
            if self.phase is Phase.SHUTTING_DOWN:
                logger.warning("Second shutdown signal: closing connections now")
                for worker in self.workers:
                    _signal(worker, signal.SIGTERM)
                    worker.stop_deadline = now + KILL_MARGIN
            else:
                logger.info("Shutting down %d workers (draining)", len(self.workers))
                self._begin_shutdown(now)
        elif self.phase is not Phase.RUNNING:
            return
        elif signum == signal.SIGHUP:
            self._start_rolling()
        elif signum == signal.SIGTTIN:
            self.target += 1
            logger.info("SIGTTIN: now %d workers", self.target)
        elif signum == signal.SIGTTOU:
            self.target = max(1, self.target - 1)
            logger.info("SIGTTOU: now %d workers", self.target)

    def _begin_shutdown(self, now: float) -> None:
        self.phase = Phase.SHUTTING_DOWN
        self.roll_queue.clear()
        for worker in self.workers:
            worker.stop(now, self.config.graceful_timeout)

    def _cleanup(self) -> None:
        for worker in self.workers:
            _signal(worker, signal.SIGKILL)
            worker.process.join(timeout=1)
        if self.watcher is not None:
            self.watcher.close()
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._old_wakeup)
        self._selector.close()
        self._signal_r.close()
        self._signal_w.close()


def _ignore(signum: int, frame: object) -> None:
    """The handler only exists so the signal is not fatal; set_wakeup_fd delivers it."""


def run(config: Config) -> int:
    """Bind the configured endpoints, supervise ``config.workers`` workers; the exit status."""
    try:
        bound = bind_all(config, config_endpoints(config))
    except EndpointError as exc:
        logger.error("%s", exc)
        return 1
    supervisor = Supervisor(config, [(b.sock, b.endpoint) for b in bound])
    created: str | None = None
    listener: metrics_export.MetricsListener | None = None
    try:
        if config.metrics_bind is not None:
            host, port = metrics_export.parse_bind(config.metrics_bind, config)
            created = metrics_export.use_multiprocess_dir()  # before any worker starts
            supervisor.metrics = metrics_export.SupervisorInstruments()
            registry = metrics_export.exposition_registry(True, supervisor.metrics.registry)
            listener = metrics_export.MetricsListener(host, port, registry, supervisor.serving)
            listener.start()
            logger.info("Metrics of all workers on %s/metrics (health: /healthz)", listener.url)
        return supervisor.run()
    except RuntimeError as exc:  # --reload without watchfiles, a bad --metrics-bind...
        logger.error("%s", exc)
        return 1
    finally:
        if listener is not None:
            listener.close()
        metrics_export.remove_multiprocess_dir(created)
        for item in bound:
            item.sock.close()
            if item.created_path:
                try:
                    os.unlink(item.created_path)
                except OSError:
                    pass
