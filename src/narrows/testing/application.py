"""``ApplicationCommunicator``: asgiref's, with database connection closing turned off.

As in Channels, the application under test must not close Django's database connections:
the test runs inside a transaction (pytest-django's ``django_db``, Django's ``TestCase``)
and closing the connection would break it. Channels patches ``close_old_connections`` with
``unittest.mock`` for the duration of each call; narrows turns it off through a context
variable, for the application task only (see :mod:`narrows.db`).
"""

from __future__ import annotations

from typing import Any

from asgiref.testing import ApplicationCommunicator as BaseApplicationCommunicator

from narrows.db import connection_closing_disabled
from narrows.types import Message, Receive, Scope, Send

__all__ = ["ApplicationCommunicator"]


class ApplicationCommunicator(BaseApplicationCommunicator):
    """Run ``application`` with ``scope`` on the current event loop and talk to it.

    ``send_input(message)``, ``receive_output(timeout)``, ``receive_nothing(timeout)``,
    ``wait(timeout)`` as in asgiref.
    """

    #: asgiref's __del__ reads it; defined here so a constructor that fails early is clean.
    _future: Any = None

    def __init__(self, application: Any, scope: Scope) -> None:
        super().__init__(application, scope)  # type: ignore[no-untyped-call]
        inner = self.application

        async def without_connection_closing(scope: Scope, receive: Receive, send: Send) -> None:
            # Runs inside the application's own task context, so the setting stays there.
            connection_closing_disabled()
            await inner(scope, receive, send)

        self.application = without_connection_closing

    async def send_input(self, message: Message) -> None:
        """Put ``message`` on the application's receive queue."""
        await super().send_input(message)  # type: ignore[no-untyped-call]

    async def receive_output(self, timeout: float = 1) -> Message:
        """The next message the application sent; raises TimeoutError after ``timeout`` s."""
        message: Message = await super().receive_output(timeout)  # type: ignore[no-untyped-call]
        return message

    async def receive_nothing(self, timeout: float = 0.1, interval: float = 0.01) -> bool:
        """True when the application sends nothing within ``timeout`` seconds."""
        nothing: bool = await super().receive_nothing(timeout, interval)  # type: ignore[no-untyped-call]
        return nothing

    async def wait(self, timeout: float = 1) -> None:
        """Wait for the application to finish (raising its exception, if any)."""
        await super().wait(timeout)  # type: ignore[no-untyped-call]


def expect_type(message: Message, *expected: str, doing: str) -> None:
    """Raise AssertionError naming the expected and received types, for the communicators.

    The message is Channels' own (tests compare it); the whole received message and the
    communicator call are added as a note, which tracebacks show.
    """
    got = message.get("type")
    if got not in expected:
        wanted = " or ".join(f"'{name}'" for name in expected)
        error = AssertionError(f"Expected type {wanted}, but was {got!r}")
        error.add_note(f"in {doing}, the application sent {message!r:.500}")
        raise error
