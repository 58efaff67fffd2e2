"""ASGI apps the command-line tests load by name (``tests.server.websocket.apps:echo``)."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
from typing import Any

from narrows.types import Receive, Send


async def echo(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain http"})
        return
    await receive()
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


_connection_number: contextvars.ContextVar[int] = contextvars.ContextVar("connection_number")
_connections = itertools.count(1)


async def task_probe(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """What the app sees of its Task at its very first statement, reported as JSON text."""
    if scope["type"] == "lifespan":
        await echo(scope, receive, send)
        return
    async with asyncio.timeout(10):  # needs a current Task
        async with asyncio.TaskGroup() as group:  # so does this
            child = group.create_task(asyncio.sleep(0, result="child ran"))
        inherited = _connection_number.get(None)  # a previous connection's value must not leak
        _connection_number.set(next(_connections))
        task = asyncio.current_task()
        if scope["type"] != "websocket":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"websocket only"})
            return
        await receive()
        await send({"type": "websocket.accept"})
        report = {
            "task": task is not None,
            "child": child.result(),
            "inherited": inherited,
            "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        }
        await send({"type": "websocket.send", "text": json.dumps(report)})
        await receive()
