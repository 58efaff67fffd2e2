"""``BaseMiddleware``: the base class of scope-populating ASGI middleware (Channels API).

A middleware wraps an inner application, may add keys to a *copy* of the scope, and calls
the inner application. Subclasses override ``__call__`` (doing their work, then
``return await super().__call__(scope, receive, send)``), exactly as with Channels.
"""

from __future__ import annotations

from narrows.types import ASGIApp, Receive, Scope, Send

__all__ = ["BaseMiddleware"]


class BaseMiddleware:
    """Base class for middleware that adds things to the scope and calls the inner app.

    The scope is copied before it is passed on, so keys a middleware adds never leak into
    the scope its caller (or a sibling connection) holds.
    """

    def __init__(self, inner: ASGIApp) -> None:
        if not callable(inner):
            raise TypeError(
                f"{type(self).__name__} expected an ASGI application (a callable), "
                f"got {type(inner).__name__}"
            )
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Copy the scope so changes made here stay local to this branch of the stack.
        scope = dict(scope)
        return await self.inner(scope, receive, send)
