"""An ASGI 2 (double-callable) application, as old Channels 2 code has."""

from __future__ import annotations

from typing import Any


class Application:
    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        if self.scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"asgi2"})
