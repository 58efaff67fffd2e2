"""Reference servers that are not ASGI: the ceiling the load clients can measure here.

``http``: a bare uvloop + httptools ``asyncio.Protocol`` answering every request with the
same precomputed hello response. ``ws``: a picows echo server. Neither does what an ASGI
server must (no scope, no app call), so they are never in a ratio; their row shows that
wrk and the picows client can drive far more than any ASGI server in the table, i.e. the
client is not the bottleneck.

    python -m bench._ceiling http|ws --port PORT
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import httptools
import uvloop

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 12\r\n\r\nHello, world"


class HelloProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_complete(self) -> None:
        self.transport.write(RESPONSE)
        if not self.parser.should_keep_alive():
            self.transport.close()


async def serve_http(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HelloProtocol, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def serve_ws(port: int) -> None:
    import picows

    class Echo(picows.WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == picows.WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            elif frame.msg_type in (picows.WSMsgType.TEXT, picows.WSMsgType.BINARY):
                transport.send(frame.msg_type, frame.get_payload_as_bytes())

    server = await picows.ws_create_server(lambda _request: Echo(), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["http", "ws"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve = serve_http if args.kind == "http" else serve_ws
    try:
        uvloop.run(serve(args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
