"""``ChannelsLiveServerTestCase``: a ``TransactionTestCase`` with a real narrows server.

The server runs in a child process (as Channels runs Daphne), so browsers, ``websockets``,
``urllib`` or Playwright talk to it over real sockets: ``self.live_server_url`` (http) and
``self.live_server_ws_url`` (ws). The child serves ``settings.ASGI_APPLICATION``, with static
files through Django's ``ASGIStaticFilesHandler`` unless ``serve_static = False``.

Differences from Channels, all deliberate:

- no Daphne: the child calls ``narrows.server.main.run`` on a listening socket the test
  process bound (so the port is known at once and nothing races for it);
- the child is *spawned*, not forked: forking a process that already runs threads (Django's
  ``sync_to_async`` executor, an asyncio loop) can deadlock. The child receives a snapshot of
  the test process's effective settings (those that differ from Django's defaults and can be
  pickled), so the test database names and class-level ``override_settings`` reach it;
- the host is added to ``ALLOWED_HOSTS`` for the child too, so ``AllowedHostsOriginValidator``
  accepts pages served by the live server.

As in Channels, the database must not be an in-memory SQLite database (the child could not
see it): give ``DATABASES[...]["TEST"]["NAME"]`` a file name.
"""

from __future__ import annotations

import multiprocessing
import pickle
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar, cast

from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.test.testcases import TransactionTestCase
from django.test.utils import modify_settings

from narrows.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ChannelsLiveServerTestCase", "NarrowsProcess", "make_application"]

#: Seconds the test process waits for the child to start serving.
STARTUP_TIMEOUT = 60.0
#: Seconds the child gets to finish in-flight requests when the test class ends.
SHUTDOWN_GRACE = 3.0


def make_application(*, static_wrapper: Callable[[Any], ASGIApp] | None) -> ASGIApp:
    """``settings.ASGI_APPLICATION``, optionally wrapped to serve static files.

    A module-level function so a ``partial`` of it can be pickled to the child.
    """
    from narrows.routing import get_default_application

    application: ASGIApp = get_default_application()
    if static_wrapper is not None:
        application = static_wrapper(application)
    return application


def _static_files_handler(application: ASGIApp) -> ASGIApp:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    # Django's handler is typed for its own ASGIHandler; any ASGI app works at run time.
    wrapped: Any = application
    return cast(ASGIApp, ASGIStaticFilesHandler(wrapped))


def settings_snapshot() -> dict[str, Any]:
    """The test process's effective settings that differ from Django's defaults."""
    from django.conf import global_settings, settings

    missing = object()
    snapshot: dict[str, Any] = {}
    for name in dir(settings):
        if not name.isupper() or name == "SETTINGS_MODULE":
            continue
        value = getattr(settings, name)
        if value == getattr(global_settings, name, missing):
            continue
        try:
            pickle.dumps(value)
        except Exception:  # a setting holding a live object: the child re-imports nothing
            continue
        snapshot[name] = value
    return snapshot


class _ReadyWhenStarted:
    """Sets ``ready`` once the server ran lifespan startup (it listens right after).

    The application's own lifespan handling is kept; an application without lifespan
    support raises, which the server logs and ignores, and ``ready`` is set all the same.
    """

    def __init__(self, application: ASGIApp, ready: Any) -> None:
        self.application = application
        self.ready = ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            return await self.application(scope, receive, send)

        async def send_and_signal(message: Message) -> None:
            await send(message)
            if message["type"].startswith("lifespan.startup."):
                self.ready.set()

        try:
            await self.application(scope, receive, send_and_signal)
        finally:
            self.ready.set()


def _serve(
    snapshot: dict[str, Any],
    listener: socket.socket,
    get_application: Callable[[], ASGIApp],
    ready: Any,
    setup: Callable[[], None] | None,
) -> None:
    """The child process: configure Django like the parent, then serve until SIGTERM."""
    import django.conf

    from narrows.server.config import Config
    from narrows.server.main import run

    django.conf.settings.configure(**snapshot)
    django.setup()
    if setup is not None:
        setup()
    application = _ReadyWhenStarted(get_application(), ready)
    config = Config(
        file_descriptors=(listener.fileno(),),
        lifespan="auto",
        verbosity=0,
        graceful_timeout=SHUTDOWN_GRACE,
        websocket_connect_timeout=None,
    )
    raise SystemExit(run(config, application))


class NarrowsProcess:
    """The narrows server for a live-server test case, in a spawned child process.

    Binds ``host`` on a free port in the test process (``port`` is known at once), then
    starts the child, which serves ``get_application()`` on that socket.
    """

    def __init__(
        self,
        host: str,
        get_application: Callable[[], ASGIApp],
        setup: Callable[[], None] | None = None,
    ) -> None:
        self.host = host
        self.get_application = get_application
        self.setup = setup
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # "localhost" may resolve to ::1 first; the tests' servers listen on 127.0.0.1.
        bind_host = "127.0.0.1" if host == "localhost" else host.strip("[]")
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((bind_host, 0))
        self.listener.listen(128)
        self.port: int = self.listener.getsockname()[1]
        context = multiprocessing.get_context("spawn")
        self.ready = context.Event()
        self.process = context.Process(
            target=_serve,
            args=(settings_snapshot(), self.listener, get_application, self.ready, setup),
            name=f"narrows-live-server-{self.port}",
            daemon=True,
        )

    def start(self) -> None:
        self.process.start()

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.2):
            if not self.process.is_alive():
                raise RuntimeError(
                    "the narrows live server exited before it was ready "
                    f"(exit code {self.process.exitcode}); see its output above"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the narrows live server did not start within {timeout}s")

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()  # SIGTERM: graceful stop
            self.process.join(SHUTDOWN_GRACE + 10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.listener.close()


class ChannelsLiveServerTestCase(TransactionTestCase):
    """``TransactionTestCase`` plus a live narrows server in a child process.

    ``live_server_url``/``live_server_ws_url`` point at it. Set ``serve_static = False`` to
    serve the application alone, ``host`` to listen elsewhere than localhost.
    """

    host: ClassVar[str] = "localhost"
    ProtocolServerProcess: ClassVar[type[NarrowsProcess]] = NarrowsProcess
    static_wrapper: ClassVar[Callable[[ASGIApp], ASGIApp] | None] = staticmethod(
        _static_files_handler
    )
    serve_static: ClassVar[bool] = True

    _server_process: ClassVar[NarrowsProcess]
    _port: ClassVar[int]
    _live_server_modified_settings: ClassVar[modify_settings]

    @property
    def live_server_url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def live_server_ws_url(self) -> str:
        return f"ws://{self.host}:{self._port}"

    @classmethod
    def setUpClass(cls) -> None:
        for connection in connections.all():
            if cls._is_in_memory_db(connection):
                raise ImproperlyConfigured(
                    "ChannelsLiveServerTestCase expected a file-based test database (the "
                    "server runs in another process), got an in-memory SQLite database for "
                    f"{connection.alias!r}: set DATABASES[{connection.alias!r}]['TEST']"
                    "['NAME'] to a file name"
                )
        super().setUpClass()
        cls._live_server_modified_settings = modify_settings(ALLOWED_HOSTS={"append": cls.host})
        cls._live_server_modified_settings.enable()
        try:
            get_application = partial(
                make_application,
                static_wrapper=cls.static_wrapper if cls.serve_static else None,
            )
            cls._server_process = cls.ProtocolServerProcess(cls.host, get_application)
            cls._server_process.start()
            cls._server_process.wait_ready()
            cls._port = cls._server_process.port
        except BaseException:
            cls._live_server_modified_settings.disable()
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls._server_process.stop()
        cls._live_server_modified_settings.disable()
        super().tearDownClass()

    @classmethod
    def _is_in_memory_db(cls, connection: Any) -> bool:
        return connection.vendor == "sqlite" and bool(connection.is_in_memory_db())
