"""Tiny ASGI apps the server tests (and benchmarks) run."""

from __future__ import annotations

import asyncio
from typing import Any

HELLO = b"Hello, world!"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Hello world for HTTP; lifespan is answered so ``--lifespan on`` works."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": HELLO})


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echo the request body back, streamed, with the request's method and path in headers."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"x-method", scope["method"].encode()),
                (b"x-path", scope["path"].encode()),
            ],
        }
    )
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        await send({"type": "http.response.body", "body": message["body"], "more_body": True})
        if not message.get("more_body"):
            break
    await send({"type": "http.response.body", "body": b""})


async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers after ``?seconds`` (default 1) — for graceful shutdown tests."""
    if scope["type"] != "http":
        return
    query = scope["query_string"].decode()
    seconds = float(query.split("=", 1)[1]) if "=" in query else 1.0
    await asyncio.sleep(seconds)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"slow done"})
