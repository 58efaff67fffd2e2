"""``manage.py runserver``: Django's development server, speaking ASGI through narrows.

Replaces Django's (and staticfiles') ``runserver`` the way Channels + Daphne do: same
arguments, same autoreloader, same banner, static files when ``DEBUG`` (or ``--insecure``),
plus WebSocket. ``--noasgi`` runs Django's own WSGI server instead.
"""

from __future__ import annotations

import datetime
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import CommandParser
from django.db import connections
from django.utils import autoreload

from narrows import __version__
from narrows.management.application import development_application
from narrows.server.config import Config

if apps.is_installed("django.contrib.staticfiles"):
    from django.contrib.staticfiles.management.commands.runserver import (
        Command as RunserverCommand,
    )
else:
    from django.core.management.commands.runserver import (  # type: ignore[assignment]
        Command as RunserverCommand,
    )


#: Seconds a code change waits for open connections to close before Django restarts.
RELOAD_CLOSE_TIMEOUT = 2.0
RELOAD_RECEIVER = "narrows.runserver.close_before_reload"


class Command(RunserverCommand):
    help = (
        "Starts the narrows ASGI development server (HTTP and WebSocket) for "
        "settings.ASGI_APPLICATION, with Django's autoreloader."
    )

    # Set by Django's runserver ``handle()`` from the ``addrport`` argument.
    addr: str
    port: str
    _raw_ipv6: bool

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--noasgi",
            action="store_false",
            dest="use_asgi",
            help="Run Django's own WSGI development server instead of narrows (no WebSocket).",
        )
        parser.add_argument(
            "--http_timeout",
            "--http-timeout",
            type=float,
            dest="http_timeout",
            default=None,
            help="Seconds an HTTP request may take before it is answered 503 "
            "(default: no limit, as in Daphne).",
        )
        parser.add_argument(
            "--websocket_handshake_timeout",
            "--websocket-handshake-timeout",
            type=float,
            dest="websocket_handshake_timeout",
            default=Config().websocket_connect_timeout,
            help="Seconds the application has to accept or reject a WebSocket (default: 5).",
        )

    def inner_run(self, *args: Any, **options: Any) -> None:
        if not options.get("use_asgi", True):
            super().inner_run(*args, **options)
            return

        # An exception silenced in ManagementUtility.execute is raised in the child now.
        autoreload.raise_last_exception()
        if not options.get("skip_checks"):
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
        self.check_migrations()
        for conn in connections.all(initialized_only=True):
            conn.close()

        application = development_application(
            serve_static=options.get("use_static_handler", True),
            insecure=options.get("insecure_serving", False),
            write=self.write_log_line,
        )
        config = Config(
            host="0.0.0.0" if self.addr == "0" else self.addr,  # Django's "0:8000" shorthand
            port=int(self.port),
            root_path=getattr(settings, "FORCE_SCRIPT_NAME", None) or "",
            http_timeout=options.get("http_timeout"),
            websocket_connect_timeout=options.get("websocket_handshake_timeout"),
            verbosity=1,
        )
        self.print_banner()
        # Imported here: the server is only needed once the command really serves.
        from narrows.server.main import run

        # Under the autoreloader this runs in a thread of the child process, where the
        # server cannot install signal handlers; Ctrl+C then ends the child's main thread.
        stops: list[Callable[[], None]] = []
        stopped = threading.Event()

        def close_before_reload(**kwargs: Any) -> None:
            # Django ends this process right after: stop the server as SIGTERM would, so
            # open WebSockets get close code 1012 (service restart), not a dropped TCP (1006).
            for stop in stops:
                try:
                    stop()
                except RuntimeError:  # the server's loop has already finished
                    pass
            stopped.wait(RELOAD_CLOSE_TIMEOUT)

        autoreload.file_changed.connect(
            close_before_reload, weak=False, dispatch_uid=RELOAD_RECEIVER
        )
        try:
            code = run(config, application, on_start=stops.append)
        except KeyboardInterrupt:
            code = 0
        finally:
            stopped.set()
        if code:
            self.stderr.write(f"Error: the narrows server stopped with exit code {code}.")
            # sys.exit does not end the process from the reloader's thread.
            os._exit(code)
        shutdown_message = options.get("shutdown_message", "")
        if shutdown_message:
            self.stdout.write(shutdown_message)

    def print_banner(self) -> None:
        if self._raw_ipv6:
            addr = f"[{self.addr}]"
        elif self.addr == "0":
            addr = "0.0.0.0"
        else:
            addr = self.addr
        now = datetime.datetime.now().strftime("%B %d, %Y - %X")
        quit_command = "CTRL-BREAK" if sys.platform == "win32" else "CONTROL-C"
        self.stdout.write(
            f"{now}\n"
            f"Django version {self.get_version()}, using settings {settings.SETTINGS_MODULE!r}\n"
            f"Starting ASGI/narrows version {__version__} development server at "
            f"{self.protocol}://{addr}:{self.port}/\n"
            f"Quit the server with {quit_command}."
        )

    def write_log_line(self, line: str, status: int) -> None:
        """One dev log line on stderr, coloured like Django's runserver colours them.

        The line carries the client's (percent-decoded) path: control characters are
        escaped so a request cannot forge log lines or send terminal escapes.
        """
        from narrows.server.logs import escape_control

        line = escape_control(line)
        style = self.style
        if status == 0 or 100 <= status < 200:
            styled = style.HTTP_INFO(line)
        elif status < 300:
            styled = style.HTTP_SUCCESS(line)
        elif status == 304:
            styled = style.HTTP_NOT_MODIFIED(line)
        elif status < 400:
            styled = style.HTTP_REDIRECT(line)
        elif status == 404:
            styled = style.HTTP_NOT_FOUND(line)
        elif status < 500:
            styled = style.HTTP_BAD_REQUEST(line)
        else:
            styled = style.HTTP_SERVER_ERROR(line)
        sys.stderr.write(styled + "\n")
