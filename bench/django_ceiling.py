"""Django's ``WSGIHandler`` called in a bare loop: the ceiling for bench/django.py.

No server, no sockets, no HTTP parsing: a fixed WSGI environ for ``GET PATH`` is handed to
the handler, the response iterated and closed, as fast as one thread can, for SECONDS. What
remains is Django's own work (middleware, view, ORM, template), which every server in the
benchmark also does; a server's rate divided by this one is the share it leaves to Django.

    python -m bench.django_ceiling SETTINGS PATH [--seconds 5 | --requests N]

``--requests N`` runs exactly N requests after the warm-up instead of timing them (for
bench/django_instructions.py, which counts the instructions of two such runs).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from typing import Any


def environ(path: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_USER_AGENT": "bench", "HTTP_ACCEPT": "*/*",
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000", "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr, "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
        "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("settings")
    parser.add_argument("path")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--requests", type=int, default=0, help="exactly N, untimed")
    args = parser.parse_args()
    os.environ["DJANGO_SETTINGS_MODULE"] = args.settings
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    def one() -> None:
        response = application(environ(args.path), start_response)
        try:
            b"".join(response)
        finally:
            response.close()  # type: ignore[attr-defined]

    for _ in range(100):  # warm-up: imports, template compilation, first connection
        one()
    if not statuses[-1].startswith("200"):
        raise SystemExit(f"expected 200 for {args.path}, got {statuses[-1]}")
    if args.requests:
        for _ in range(args.requests):
            one()
        print(f"requests {args.requests}")
        return
    count, started = 0, time.perf_counter()
    deadline = started + args.seconds
    while time.perf_counter() < deadline:
        for _ in range(20):
            one()
        count += 20
    print(f"requests/s {count / (time.perf_counter() - started):.1f}")


if __name__ == "__main__":
    main()
