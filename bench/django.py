"""Django views: narrows + ``narrows.asgi`` against the ASGI and WSGI servers Django runs on.

One worker each, same run, interleaved rounds of ``wrk -t1 -cN -dDs`` (keep-alive):

* ``narrows``: the narrows server with ``narrows.asgi.get_asgi_application()``;
* ``uvicorn``, ``daphne``: Django's own ``django.core.asgi.get_asgi_application()``;
* ``gunicorn``: ``gunicorn -k gthread -w 1 --threads 4`` with Django's WSGI handler;
* ``granian``: ``granian --interface wsgi --workers 1`` with Django's WSGI handler;
* ``(ceiling)``: Django's ``WSGIHandler`` called in a bare loop in one process, no server
  and no sockets: the most any server can get out of these views on this machine.

Workloads (bench/django_site): ``page``, startproject's settings and MIDDLEWARE, a
template and one ORM query on SQLite; ``page-async``, the same as an async view; ``json``,
a ``JsonResponse`` view with no middleware at all.

    .bench-venv/bin/python -m bench.django [--rounds 3] [--duration 5] [--workloads page,json]
"""

from __future__ import annotations

import os
import sys

if not __package__:  # run as a file: make ``bench`` importable
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
from dataclasses import dataclass

from bench import _common
from bench._common import HOST, MeasureError, Measurement, ServerProcess, ServerSpec

SITE = "bench.django_site"
CEILING = "(ceiling: WSGIHandler, bare loop)"


@dataclass(frozen=True)
class Workload:
    name: str
    settings: str
    path: str
    marker: bytes  # in every correct answer
    #: what the ceiling runs: the async twin's ceiling is the sync page's (WSGIHandler would
    #: run an async view through async_to_sync, a cost no server here pays)
    ceiling_path: str = ""


WORKLOADS = {
    "page": Workload("page", f"{SITE}.settings", "/page/", b"<td>Item 9</td>"),
    "page-async": Workload(
        "page-async", f"{SITE}.settings", "/page-async/", b"<td>Item 9</td>", "/page/"
    ),
    "json": Workload("json", f"{SITE}.settings_bare", "/json/", b'"Hello, world"'),
}
#: narrows / peer, on the median (the issue's targets)
TARGETS = {
    "page": {"uvicorn": 4.0, "gunicorn": 1.5, "granian": 1.0},
    "page-async": {"uvicorn": 2.0},
}


def _narrows(app: str, port: int) -> list[str]:
    return ["-m", "narrows", app, "-b", HOST, "-p", str(port)]


def _uvicorn(app: str, port: int) -> list[str]:
    return [
        "-m", "uvicorn", app, "--host", HOST, "--port", str(port), "--loop", "uvloop",
        "--http", "httptools", "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


def _daphne(app: str, port: int) -> list[str]:
    return ["-m", "daphne", "-b", HOST, "-p", str(port), "-v", "0", app]


def _gunicorn(app: str, port: int) -> list[str]:
    return [
        "-m", "gunicorn", "-k", "gthread", "-w", "1", "--threads", "4",
        "-b", f"{HOST}:{port}", "--log-level", "warning", app,
    ]  # fmt: skip


def _granian(app: str, port: int) -> list[str]:
    return [
        "-m", "granian", "--interface", "wsgi", "--workers", "1", "--host", HOST,
        "--port", str(port), "--log-level", "warning", app,
    ]  # fmt: skip


ASGI_NARROWS = f"{SITE}.asgi_narrows:application"
ASGI_DJANGO = f"{SITE}.asgi_django:application"
WSGI = f"{SITE}.wsgi:application"
SERVERS = {
    "narrows": ServerSpec("narrows", _narrows, ASGI_NARROWS, ("narrows.asgi",)),
    "uvicorn": ServerSpec("uvicorn", _uvicorn, ASGI_DJANGO, ("uvicorn", "uvloop", "httptools")),
    "daphne": ServerSpec("daphne", _daphne, ASGI_DJANGO, ("daphne",)),
    "gunicorn": ServerSpec("gunicorn", _gunicorn, WSGI, ("gunicorn",)),
    "granian": ServerSpec("granian", _granian, WSGI, ("granian",)),
}


def wrk(server: ServerProcess, path: str, duration: float, connections: int) -> Measurement:
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
        f"http://{HOST}:{server.port}{path}",
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    except subprocess.TimeoutExpired:
        raise MeasureError(f"wrk did not finish in {duration + 60:.0f}s") from None
    out = done.stdout + done.stderr
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if done.returncode != 0 or rate is None:
        raise MeasureError(f"wrk failed (exit {done.returncode}): {out.strip()[-300:]}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if bad:
        raise MeasureError(f"{bad.group(1)} non-2xx responses")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors and sum(int(n) for n in errors.groups()) > 0:
        print(f"  note: {server.name}: {errors.group(0)}")
    if not server.alive:
        raise MeasureError("the server exited during the run")
    total = re.search(r"(\d+) requests in", out)
    return Measurement(float(rate.group(1)), int(total.group(1)) if total else 0)


def check_answer(server: ServerProcess, workload: Workload) -> None:
    request = f"GET {workload.path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    with socket.create_connection((HOST, server.port), timeout=30) as sock:
        sock.sendall(request.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if not data.startswith(b"HTTP/1.1 200") or workload.marker not in data:
        raise MeasureError(f"expected 200 with {workload.marker!r}, got {data[:300]!r}")


def ceiling(workload: Workload, seconds: float) -> float:
    """Requests/s of Django's WSGIHandler called in a loop (bench/django_ceiling.py)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.django_ceiling", workload.settings,
         workload.ceiling_path or workload.path,
         "--seconds", str(seconds)],
        capture_output=True, text=True, timeout=seconds + 120, cwd=_common.ROOT,
        env={**os.environ, "PYTHONPATH": _common.ROOT},
    )  # fmt: skip
    match = re.search(r"^requests/s ([\d.]+)$", done.stdout, re.M)
    if done.returncode != 0 or match is None:
        raise MeasureError(f"ceiling run failed: {(done.stdout + done.stderr)[-400:]}")
    return float(match.group(1))


def narrows_with_threads(count: int) -> ServerSpec:
    """narrows with ``--threads COUNT``: to compare pool sizes in one run."""

    def build(app: str, port: int) -> list[str]:
        return [*_narrows(app, port), "--threads", str(count)]

    return ServerSpec(f"narrows --threads {count}", build, ASGI_NARROWS, ("narrows.asgi",))


def measure_workloads(
    names: list[str], workloads: list[Workload], args: argparse.Namespace
) -> dict[str, dict[str, list[float]]]:
    """Rates per workload per server; servers are started once per settings module."""
    rates: dict[str, dict[str, list[float]]] = {}
    for settings in dict.fromkeys(w.settings for w in workloads):
        group = [w for w in workloads if w.settings == settings]
        os.environ["DJANGO_SETTINGS_MODULE"] = settings
        specs = [SERVERS[n] for n in names]
        specs += [narrows_with_threads(n) for n in args.threads]
        servers = _common.start_servers(specs)
        try:
            for workload in group:
                print(f"\n-- {workload.name}: {settings}, GET {workload.path}", flush=True)
                for server in servers:
                    if server.alive:
                        try:
                            check_answer(server, workload)
                            wrk(server, workload.path, args.warmup, args.connections)
                        except (OSError, MeasureError) as exc:
                            server.fail(f"warm-up failed: {exc}")
                results, cpu = _common.interleaved_rounds(
                    [s for s in servers if s.alive],
                    args.rounds,
                    lambda s, w=workload: wrk(s, w.path, args.duration, args.connections),  # type: ignore[misc]
                )
                ceilings = [ceiling(workload, args.duration) for _ in range(args.rounds)]
                print(f"  {CEILING}: " + " ".join(f"{c:,.0f}/s" for c in ceilings), flush=True)
                results[CEILING] = ceilings
                for server in servers:
                    if server.error and not results.get(server.name):
                        print(f"{server.name}: not available ({server.error})")
                table(workload, results, cpu)
                rates[workload.name] = results
        finally:
            _common.stop_all()
    return rates


def table(workload: Workload, results: dict[str, list[float]], cpu: dict[str, list[float]]) -> None:
    ours = results.get("narrows") or []
    ceiling_rates = results.get(CEILING) or []
    top = statistics.median(ceiling_rates) if ceiling_rates else None
    print(f"\n{workload.name}: requests/s (median, worst of {len(ours)} rounds)")
    print(f"{'server':<36} {'median':>8} {'worst':>8} {'CPU us/req':>10} "
          f"{'narrows/x':>10} {'of ceiling':>10}")  # fmt: skip
    for name, values in results.items():
        if not values:
            continue
        median, worst = statistics.median(values), min(values)
        cpu_us = statistics.median(cpu[name]) if cpu.get(name) else None
        ratio = f"{statistics.median(ours) / median:.2f}x" if ours and name != "narrows" else "-"
        share = f"{median / top:.0%}" if top else "-"
        cpu_text = f"{cpu_us:,.0f}" if cpu_us is not None else "-"
        print(f"{name:<36} {median:>8,.0f} {worst:>8,.0f} {cpu_text:>10} {ratio:>10} {share:>10}")
    _common.round_by_round({k: v for k, v in results.items() if k != CEILING})
    for peer, goal in TARGETS.get(workload.name, {}).items():
        if ours and results.get(peer):
            ratio = statistics.median(ours) / statistics.median(results[peer])
            worst = min(ours) / max(results[peer])
            verdict = "met" if ratio >= goal else "NOT met"
            print(f"target narrows/{peer} >= {goal}x on {workload.name}: {ratio:.2f}x "
                  f"(worst round vs best: {worst:.2f}x), {verdict}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk per server first")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--threads",
        type=lambda text: [int(n) for n in text.split(",") if n],
        default=[],
        help="also run narrows with --threads N for each N of a comma-separated list",
    )
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    _common.add_common_arguments(parser)
    args = parser.parse_args(argv)
    names = _common.parse_servers(args.servers, list(SERVERS))
    workloads = [WORKLOADS[n] for n in _common.parse_servers(args.workloads, list(WORKLOADS))]
    _common.install_cleanup()
    _common.exclusive(args)
    _common.header(
        "Django views: requests/s",
        [f"method    wrk -t1 -c{args.connections} -d{args.duration:g}s, keep-alive, "
         f"{args.rounds} interleaved rounds after {args.warmup:g}s warm-up, 1 worker each; "
         f"ceiling: WSGIHandler in a loop for {args.duration:g}s per round"],
    )  # fmt: skip
    if shutil.which("wrk") is None:
        print("wrk: not installed (apt-get install wrk); nothing measured")
        return 1
    with tempfile.TemporaryDirectory(prefix="narrows-bench-django-") as tmp:
        from bench.django_site.database import make_database

        os.environ["BENCH_DJANGO_DB"] = os.path.join(tmp, "bench.sqlite3")
        make_database(os.environ["BENCH_DJANGO_DB"])
        measure_workloads(names, workloads, args)
    print(f"reproduce {_common.reproduce_command()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
