"""Shared machinery of the bench scripts: server processes, interleaved rounds, tables.

Every server runs as a child process in its own session (so a whole worker tree can be
stopped with one ``killpg``), bound to 127.0.0.1 on a free port, with its output in a log
file that is quoted when it fails. Servers that cannot run here are reported as
"NAME: not available (reason)" and left out; no figure is ever invented for them.
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import fcntl
import importlib.util
import os
import platform
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"

HELLO_APP = "bench.apps:hello"
ECHO_APP = "bench.apps:echo"
CHANNELS_ECHO_APP = "bench.channels_echo.asgi_channels:application"
NARROWS_ECHO_APP = "bench.channels_echo.asgi_narrows:application"


# --------------------------------------------------------------------------- servers


def _narrows(app: str, port: int) -> list[str]:
    return ["-m", "narrows", app, "-b", HOST, "-p", str(port)]


def _narrows_metrics(app: str, port: int) -> list[str]:
    """narrows with ``--metrics-bind`` (its cost against plain narrows: bench/instructions.py)."""
    return [*_narrows(app, port), "--metrics-bind", f"{HOST}:{free_port()}"]


def _uvicorn(app: str, port: int) -> list[str]:
    # uvicorn at its fastest: httptools + uvloop, the websockets implementation, no access log.
    return [
        "-m", "uvicorn", app, "--host", HOST, "--port", str(port), "--loop", "uvloop",
        "--http", "httptools", "--ws", "websockets", "--log-level", "warning",
        "--no-access-log",
    ]  # fmt: skip


def _granian(app: str, port: int) -> list[str]:
    return [
        "-m", "granian", "--interface", "asgi", "--host", HOST, "--port", str(port),
        "--workers", "1", "--loop", "uvloop", "--log-level", "warning", app,
    ]  # fmt: skip


def _daphne(app: str, port: int) -> list[str]:
    return ["-m", "daphne", "-b", HOST, "-p", str(port), "-v", "0", app]


def _hypercorn(app: str, port: int) -> list[str]:
    return [
        "-m", "hypercorn", "-b", f"{HOST}:{port}", "-w", "1", "-k", "uvloop",
        "--log-level", "warning", app,
    ]  # fmt: skip


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server on one app: ``python ARGS`` plus the modules it needs."""

    name: str
    build: Callable[[str, int], list[str]]
    app: str
    requires: tuple[str, ...]
    #: Environment variables for the server process (PYTHONPATH replaces the default).
    env: tuple[tuple[str, str], ...] = ()

    def missing(self) -> str | None:
        """Why this server cannot start in this interpreter, or None."""
        for module in self.requires:
            try:
                found = importlib.util.find_spec(module)
            except (ImportError, ValueError) as exc:
                return f"cannot import {module}: {exc}"
            if found is None and "." in module:
                return f"module {module} does not exist (yet) in the installed package"
            if found is None:
                return f"{module} is not installed in {sys.executable} (run bench/setup)"
        return None


def _ceiling_http(_app: str, port: int) -> list[str]:
    return ["-m", "bench._ceiling", "http", "--port", str(port)]


def _ceiling_ws(_app: str, port: int) -> list[str]:
    return ["-m", "bench._ceiling", "ws", "--port", str(port)]


#: Not ASGI servers: bare protocols showing what the load client can drive (bench/_ceiling.py).
CEILING_HTTP = "(ceiling: uvloop+httptools, no ASGI)"
CEILING_WS = "(ceiling: picows server, no ASGI)"

SERVER_MODULES = {
    "narrows": (_narrows, ("narrows.server.cli",)),
    "narrows-metrics": (_narrows_metrics, ("narrows.server.cli", "prometheus_client")),
    # The same narrows with its compiled HTTP core switched off (NARROWS_PURE_PYTHON=1).
    "narrows-pure": (_narrows, ("narrows.server.cli",)),
    CEILING_HTTP: (_ceiling_http, ("httptools", "uvloop")),
    CEILING_WS: (_ceiling_ws, ("picows", "uvloop")),
    "uvicorn": (_uvicorn, ("uvicorn", "httptools", "uvloop", "websockets")),
    "granian": (_granian, ("granian",)),
    "daphne": (_daphne, ("daphne",)),
    "hypercorn": (_hypercorn, ("hypercorn",)),
}


SERVER_ENV = {"narrows-pure": (("NARROWS_PURE_PYTHON", "1"),)}


def spec(
    server: str, app: str, *, name: str | None = None, extra: Sequence[str] = ()
) -> ServerSpec:
    build, requires = SERVER_MODULES[server]
    return ServerSpec(name or server, build, app, (*requires, *extra), SERVER_ENV.get(server, ()))


_RUNNING: list[ServerProcess] = []


@dataclass
class ServerProcess:
    spec: ServerSpec
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: str = ""
    error: str | None = None
    _log: object = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    def start(self) -> None:
        self.error = self.spec.missing()
        if self.error:
            return
        self.port = free_port()
        fd, self.log_path = tempfile.mkstemp(prefix=f"bench-{self.name}-", suffix=".log")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": ROOT, **dict(self.spec.env)}
        self.proc = subprocess.Popen(
            [sys.executable, *self.spec.build(self.spec.app, self.port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        os.close(fd)
        _RUNNING.append(self)

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Wait until the port accepts connections; on failure set ``error``."""
        if self.proc is None:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.fail(f"exited with code {self.proc.returncode} at startup")
                return False
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.1)
        self.fail(f"not listening on {HOST}:{self.port} after {timeout:.0f}s")
        return False

    def fail(self, reason: str) -> None:
        tail = self.log_tail()
        self.error = f"{reason}{': ' + tail if tail else ''}"
        self.stop()

    def log_tail(self, lines: int = 3) -> str:
        try:
            with open(self.log_path, errors="replace") as log:
                text = [line.strip() for line in log.read().splitlines() if line.strip()]
        except OSError:
            return ""
        return " | ".join(text[-lines:])[-400:]

    @property
    def alive(self) -> bool:
        return self.error is None and self.proc is not None and self.proc.poll() is None

    def pids(self) -> list[int]:
        """The server's process and all its descendants (granian and hypercorn fork workers)."""
        if self.proc is None:
            return []
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
        tree, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree

    def rss_kib(self) -> int:
        """Resident memory of the whole server tree: VmRSS from /proc/PID/status, summed."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as status:
                    for line in status:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
                            break
            except OSError:
                continue
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU time of the whole server tree, from /proc/PID/stat."""
        ticks = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, IndexError, ValueError):
                continue
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(8)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass
        # Workers the server forked are in its session: make sure none outlives it.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self in _RUNNING:
            _RUNNING.remove(self)
        if self.log_path:  # its tail is in ``error`` when it failed
            try:
                os.unlink(self.log_path)
            except OSError:
                pass


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if the bench process dies, even by SIGKILL
    (Linux prctl PR_SET_PDEATHSIG), so no server outlives an interrupted run."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()


def _on_signal(signum: int, _frame: object) -> None:
    stop_all()
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    """Stop every server on exit, Ctrl+C (KeyboardInterrupt unwinds), SIGTERM and SIGHUP."""
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)


def start_servers(specs: Iterable[ServerSpec]) -> list[ServerProcess]:
    servers = [ServerProcess(s) for s in specs]
    # ``free_port`` releases the port it found before the server binds it: bench scripts
    # run side by side (``--no-lock``, as the smoke tests do) could be given the same one.
    # One script at a time picks its ports and waits until its servers listen on them.
    with open(PORTS_LOCK_PATH, "a") as ports_lock:
        fcntl.flock(ports_lock, fcntl.LOCK_EX)
        for server in servers:
            server.start()
        for server in servers:
            if server.error is None:
                server.wait_ready()
    return servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def raise_nofile(wanted: int) -> int:
    """Raise the soft open-files limit towards ``wanted`` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


# --------------------------------------------------------------------------- options

LOCK_PATH = os.path.join(tempfile.gettempdir(), "narrows-bench.lock")
PORTS_LOCK_PATH = os.path.join(tempfile.gettempdir(), "narrows-bench-ports.lock")
_LOCK_FD: list[int] = []


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-lock",
        action="store_true",
        help=f"do not wait for other bench runs ({LOCK_PATH}); for smoke tests only",
    )


def exclusive(args: argparse.Namespace) -> None:
    """Serialize benchmark runs on this machine: two at once would measure each other."""
    if args.no_lock or _LOCK_FD:
        return
    fd = os.open(LOCK_PATH, os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for another bench run to finish (lock {LOCK_PATH})", flush=True)
        started = time.monotonic()
        fcntl.flock(fd, fcntl.LOCK_EX)
        print(f"waited {time.monotonic() - started:.0f}s for another bench run", flush=True)
    _LOCK_FD.append(fd)  # held until this process exits


# --------------------------------------------------------------------------- rounds


@dataclass(frozen=True)
class Measurement:
    """One load run: its rate and how many operations the server did during it."""

    rate: float
    operations: int
    #: the load client's own CPU per operation where it measures it (excluding its start-up)
    client_cpu_us: float | None = None


def interleaved_rounds(
    servers: list[ServerProcess],
    rounds: int,
    measure: Callable[[ServerProcess], Measurement],
    pause: float = 0.5,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Run ``measure`` on every live server, round after round, rotating the order so no
    server is always first. A server whose measurement raises is dropped with the reason.

    Returns the rates and, per round, the server's CPU time (user + system, whole process
    tree) per operation in microseconds: on a shared machine the rate depends on what else
    runs, the CPU cost of an operation much less so."""
    results: dict[str, list[float]] = {s.name: [] for s in servers}
    cpu: dict[str, list[float]] = {s.name: [] for s in servers}
    client_cpu: list[float] = []
    for number in range(rounds):
        live = [s for s in servers if s.alive]
        if not live:
            break
        shift = number % len(live)
        order = live[shift:] + live[:shift]
        for server in order:
            if not server.alive:
                continue
            try:
                used, client = server.cpu_seconds(), _children_cpu()
                value = measure(server)
                used, client = server.cpu_seconds() - used, _children_cpu() - client
            except MeasureError as exc:
                server.fail(str(exc))
                continue
            results[server.name].append(value.rate)
            ops = value.operations or 1
            cpu[server.name].append(used * 1e6 / ops)
            client_us = value.client_cpu_us
            if client_us is None:
                client_us = client * 1e6 / ops
            client_cpu.append(client_us)
            print(
                f"  round {number + 1}/{rounds} {server.name:<38} {value.rate:>12,.0f}/s"
                f"  server {used * 1e6 / ops:>7,.1f} us CPU/op, client {client_us:.1f}",
                flush=True,
            )
            time.sleep(pause)
    if client_cpu:
        print(
            f"load client CPU per operation: median {statistics.median(client_cpu):.1f} us, "
            f"max {max(client_cpu):.1f} us (it has a core of its own while a server has the other)"
        )
    return results, cpu


def _children_cpu() -> float:
    """CPU seconds of this process's finished children: the load client (wrk, _wsclient)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class MeasureError(Exception):
    """A measurement that cannot be trusted (errors, wrong answers, crashed server)."""


# --------------------------------------------------------------------------- reporting


def header(title: str, extra: Sequence[str] = ()) -> None:
    print(f"== {title} ==")
    print(f"date      {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"machine   {platform.machine()}, {os.cpu_count()} cores, {_cpu_model()}")
    print(
        f"load avg  {' '.join(f'{x:.2f}' for x in os.getloadavg())} (other work shares the cores)"
    )
    print(f"python    {platform.python_version()} ({sys.executable})")
    names = ["narrows", "uvicorn", "granian", "daphne", "hypercorn", "channels", "Django"]
    print("versions  " + ", ".join(f"{n} {_version(n)}" for n in names))
    for line in extra:
        print(line)
    print(f"reproduce {reproduce_command()}", flush=True)


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def reproduce_command() -> str:
    python = os.path.relpath(sys.executable, ROOT)
    if python.startswith(".."):
        python = sys.executable
    module = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    return (
        shlex.join(["cd", ROOT])
        + " && "
        + shlex.join([python, "-m", f"bench.{module}", *sys.argv[1:]])
    )


def report(
    servers: list[ServerProcess],
    results: dict[str, list[float]],
    *,
    unit: str,
    higher_is_better: bool,
    targets: dict[str, tuple[str, float]] | None = None,
    reference: str = "narrows",
    decimals: int = 0,
    footer: bool = True,
) -> list[str]:
    """Print medians, every round, and narrows/peer ratios; return the summary lines."""
    targets = targets or {}
    better = "higher is better" if higher_is_better else "lower is better"
    print(f"\nresults: {unit}, median of interleaved rounds ({better})")
    print(f"ratio = {reference} / peer{'' if higher_is_better else ' (below 1 is better)'}")
    print(f"{'server':<38} {'median':>12}  {'ratio':>8}  rounds")
    medians = {n: statistics.median(v) for n, v in results.items() if v}
    ref = medians.get(reference)
    lines: list[str] = []
    for server in servers:
        values = results.get(server.name) or []
        if not values:
            reason = server.error or "no measurement"
            line = f"{server.name}: not available ({reason})"
            print(line)
            lines.append(line)
            continue
        median = medians[server.name]
        if server.name == reference:
            ratio = "-"
        elif ref is None:
            ratio = "n/a"
        else:
            ratio = f"{ref / median:.2f}x"
        rounds = " ".join(f"{v:,.{decimals}f}" for v in values)
        print(f"{server.name:<38} {median:>12,.{decimals}f}  {ratio:>8}  {rounds}")
    for peer, (op, goal) in targets.items():
        if peer not in medians:
            continue
        if ref is None:
            line = (
                f"target {reference}/{peer} {op} {goal}x: not measured ({reference} not available)"
            )
        else:
            ratio = ref / medians[peer]
            met = ratio >= goal if op == ">=" else ratio <= goal
            verdict = "met" if met else "NOT met"
            line = f"target {reference}/{peer} {op} {goal}x: {ratio:.2f}x, {verdict}"
        print(line)
        lines.append(line)
    if footer:
        print(f"reproduce {reproduce_command()}", flush=True)
    return lines


def parse_servers(text: str, known: Sequence[str]) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"expected servers among {', '.join(known)}, got {', '.join(unknown)}")
    return names


def round_by_round(results: dict[str, list[float]], reference: str = "narrows") -> None:
    """The reference server's worst round beside its median, and its ratio to each other
    server round by round (same round, same conditions): median, lowest and highest."""
    ours = results.get(reference) or []
    if not ours:
        return
    print(f"{reference}: median {statistics.median(ours):,.0f}/s, worst round {min(ours):,.0f}/s")
    for name, theirs in results.items():
        pairs = (
            [a / b for a, b in zip(ours, theirs, strict=False) if b] if name != reference else []
        )
        if pairs:
            print(
                f"{reference} / {name}, round by round: median {statistics.median(pairs):.2f}x, "
                f"lowest {min(pairs):.2f}x, highest {max(pairs):.2f}x"
            )
