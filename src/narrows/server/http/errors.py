"""Exceptions the HTTP core raises, in a module of their own.

They subclass ``RuntimeError``, which mypyc cannot compile a class from, so they live
outside the modules ``setup.py`` compiles (those import them from here).
"""

from __future__ import annotations

__all__ = ["InvalidTransition", "UnexpectedMessage"]


class InvalidTransition(RuntimeError):
    """An input the connection's state does not allow (a bug in the I/O layer)."""


class UnexpectedMessage(RuntimeError):
    """The application sent an ASGI message that does not fit the response's phase."""
