"""A Django-less ASGI app for the process-management tests (fast to import).

``/``: the answering pid; ``/slow?seconds=S``: answers after S seconds (drain tests);
``/hang``: blocks the event loop for good (health-check tests).
"""

import asyncio
import os
import time
from typing import Any
from urllib.parse import parse_qs


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": f"pid={os.getpid()}"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    if scope["path"] == "/slow":
        seconds = float(parse_qs(scope["query_string"].decode())["seconds"][0])
        await asyncio.sleep(seconds)
    elif scope["path"] == "/hang":
        time.sleep(3600)  # a blocking call in async code: the loop stops
    body = f"pid={os.getpid()} scheme={scope['scheme']}".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
