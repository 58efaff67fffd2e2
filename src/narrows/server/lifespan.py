"""ASGI lifespan: ``--lifespan auto|on|off``.

``startup()`` runs the application's lifespan scope until it reports startup complete or
failed; the ``state`` dict it fills is shared (shallow-copied) into every request scope.
With ``auto`` an application that raises before answering the startup event is taken not
to support lifespan, logged once at DEBUG and served anyway; with ``on`` that is a failure. A
``lifespan.startup.failed`` message always fails startup, and the server exits non-zero
with the application's message.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from narrows.server.config import LifespanMode
from narrows.types import ASGIApp, Message

__all__ = ["Lifespan", "LifespanFailure"]

logger = logging.getLogger("narrows.server")


class LifespanFailure(RuntimeError):
    """Startup (or, with ``--lifespan on``, shutdown) failed; ``str()`` is the reason."""


class Lifespan:
    def __init__(self, app: ASGIApp, mode: LifespanMode, state: dict[str, Any]) -> None:
        self.app = app
        self.mode = mode
        self.state = state
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failure: str | None = None
        self._unsupported = False
        self._app_finished = False

    async def startup(self) -> None:
        if self.mode == "off":
            return
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._queue.put({"type": "lifespan.startup"})
        await self._startup_done.wait()
        if self._failure is not None:
            raise LifespanFailure(self._failure)

    async def shutdown(self) -> None:
        if self.mode == "off" or self._unsupported or self._task is None:
            return
        if not self._app_finished:
            await self._queue.put({"type": "lifespan.shutdown"})
            await self._shutdown_done.wait()
        if self._failure is not None and self.mode == "on":
            raise LifespanFailure(self._failure)

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.5"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:
            if not self._startup_done.is_set() and self.mode == "auto":
                self._unsupported = True
                # An application without lifespan support is normal (Django's is one).
                logger.debug("ASGI 'lifespan' protocol appears unsupported (%r).", exc)
            else:
                self._failure = self._failure or f"Exception in 'lifespan' protocol: {exc!r}"
                logger.error("Exception in 'lifespan' protocol", exc_info=exc)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
        finally:
            self._app_finished = True
            if not self._startup_done.is_set() and self.mode == "on" and self._failure is None:
                self._failure = "The application returned before completing lifespan startup"
            self._startup_done.set()
            self._shutdown_done.set()

    async def _receive(self) -> Message:
        return await self._queue.get()

    async def _send(self, message: Message) -> None:
        mtype = message.get("type")
        if mtype == "lifespan.startup.complete" and not self._startup_done.is_set():
            self._startup_done.set()
        elif mtype == "lifespan.startup.failed" and not self._startup_done.is_set():
            self._failure = str(message.get("message") or "lifespan startup failed")
            self._startup_done.set()
        elif mtype == "lifespan.shutdown.complete" and self._startup_done.is_set():
            self._shutdown_done.set()
        elif mtype == "lifespan.shutdown.failed" and self._startup_done.is_set():
            self._failure = str(message.get("message") or "lifespan shutdown failed")
            logger.error("Lifespan shutdown failed: %s", self._failure)
            self._shutdown_done.set()
        else:
            phase = "shutdown" if self._startup_done.is_set() else "startup"
            raise RuntimeError(
                f'Expected ASGI message "lifespan.{phase}.complete" or '
                f'"lifespan.{phase}.failed", got "{mtype}"'
            )
