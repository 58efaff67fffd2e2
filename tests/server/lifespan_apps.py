"""ASGI apps with various lifespan behaviours, importable by subprocess tests."""

from __future__ import annotations

from typing import Any


async def failing_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database is unreachable"})
        return


async def stateful(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["greeting"] = "hello from lifespan"
                await send({"type": "lifespan.startup.complete"})
            else:
                print("lifespan shutdown ran", flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = scope["state"]["greeting"].encode()
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": body})


async def no_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        raise ValueError(f"unsupported scope {scope['type']}")
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": b"plain"})
