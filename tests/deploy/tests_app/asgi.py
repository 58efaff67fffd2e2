"""ASGI entry point of the deployment tests' project, shaped like the seed's ``asgi.py``.

HTTP goes to Django; ``/ws/chat/`` is a group chat over the configured (Redis) channel
layer, written against the plain ASGI interface so these tests exercise the server, the
supervisors and the layer, not the consumer framework. Every message a client receives
names the process that delivered it, so tests can tell processes apart.
"""

import asyncio
import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests_app.settings")

from django.core.asgi import get_asgi_application

django_application = get_asgi_application()

from narrows.layers import get_channel_layer  # noqa: E402

GROUP = "chat"


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await django_application(scope, receive, send)
    elif scope["type"] == "websocket" and scope["path"] == "/ws/chat/":
        await chat(scope, receive, send)
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.close", "code": 4404})
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return


async def chat(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Join the group; relay what the client says to the group and the group to the client."""
    assert (await receive())["type"] == "websocket.connect"
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    await send({"type": "websocket.accept"})
    client = scope["client"][0] if scope.get("client") else None
    await send({"type": "websocket.send", "text": f"hello pid={os.getpid()} client={client}"})

    async def from_group() -> None:
        while True:
            message = await layer.receive(channel)
            await send({"type": "websocket.send", "text": f"{message['text']} via={os.getpid()}"})

    relay = asyncio.create_task(from_group())
    try:
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                return
            text = event.get("text") or ""
            await layer.group_send(GROUP, {"type": "chat.message", "text": text})
    finally:
        relay.cancel()
        await layer.group_discard(GROUP, channel)
