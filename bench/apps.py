"""The ASGI apps every server in the benchmarks serves: identical code for all of them.

``hello``: the hello-world HTTP app (12-byte body, one ``http.response.body`` message).
``echo``: a raw ASGI WebSocket echo (text back as text, bytes back as bytes); it answers
plain HTTP like ``hello`` so a server's readiness can be checked with a GET.
Both accept the lifespan protocol so servers that run it (uvicorn, granian, narrows) start
without complaints.
"""

from __future__ import annotations

from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]

BODY = b"Hello, world"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"12")],
}
RESPONSE_BODY = {"type": "http.response.body", "body": BODY}


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def hello(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send(START)
        await send(RESPONSE_BODY)
    elif scope["type"] == "lifespan":
        await _lifespan(receive, send)


async def echo(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.receive":
                if message.get("text") is not None:
                    await send({"type": "websocket.send", "text": message["text"]})
                else:
                    await send({"type": "websocket.send", "bytes": message.get("bytes")})
            elif message["type"] == "websocket.disconnect":
                return
    else:
        await hello(scope, receive, send)
