"""narrows.middleware.BaseMiddleware."""

from __future__ import annotations

from typing import Any

import pytest

from narrows.middleware import BaseMiddleware
from narrows.testing import WebsocketCommunicator


class AddTenant(BaseMiddleware):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope = dict(scope, tenant="acme")
        return await super().__call__(scope, receive, send)


async def test_subclass_adds_to_a_copy_of_the_scope() -> None:
    seen: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        await receive()
        await send({"type": "websocket.accept"})

    communicator = WebsocketCommunicator(AddTenant(inner), "/ws/")
    connected, _ = await communicator.connect()
    assert connected
    assert seen[0]["tenant"] == "acme"
    assert seen[0] is not communicator.scope
    assert "tenant" not in communicator.scope


async def test_base_middleware_passes_a_copy_through() -> None:
    seen: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        scope["added_inside"] = True

    outer_scope = {"type": "lifespan"}
    await BaseMiddleware(inner)(outer_scope, None, None)  # type: ignore[arg-type]
    assert seen == [{"type": "lifespan", "added_inside": True}]
    assert outer_scope == {"type": "lifespan"}


def test_inner_must_be_callable() -> None:
    with pytest.raises(TypeError, match="expected an ASGI application"):
        BaseMiddleware("not an app")  # type: ignore[arg-type]
