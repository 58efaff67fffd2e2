"""The app the metrics tests serve: every kind of traffic a metric counts.

``GET /``: 200 "hello"; ``POST /echo``: the body back; ``GET /missing``: 404;
``GET /slow?s=``: waits, then 200; ``GET /block?s=``: blocks the event loop (time.sleep);
``GET /pid``: the worker's pid; ``GET /layer``: one send and one receive on an in-memory
channel layer, and a group_send to an empty group; ``/ws``: WebSocket echo.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from narrows.layers.inmemory import InMemoryChannelLayer

_layer: InMemoryChannelLayer | None = None


async def respond(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _layer
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
    if scope["type"] != "http":
        return
    path, query = scope["path"], scope["query_string"].decode()
    seconds = float(query.partition("=")[2] or 0)
    if path == "/echo":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await respond(send, 200, body)
    elif path == "/missing":
        await respond(send, 404, b"no")
    elif path == "/slow":
        await asyncio.sleep(seconds)
        await respond(send, 200, b"slow")
    elif path == "/block":
        time.sleep(seconds)
        await respond(send, 200, b"blocked")
    elif path == "/pid":
        await respond(send, 200, str(os.getpid()).encode())
    elif path == "/layer":
        _layer = _layer or InMemoryChannelLayer()
        await _layer.send("metrics-test", {"type": "x"})
        await _layer.receive("metrics-test")
        await _layer.group_send("nobody", {"type": "x"})
        await respond(send, 200, b"layer")
    else:
        await respond(send, 200, b"hello")
