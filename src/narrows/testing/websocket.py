"""``WebsocketCommunicator``: test a WebSocket application without a server."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlparse

from narrows.testing.application import ApplicationCommunicator, expect_type
from narrows.types import Headers

__all__ = ["WebsocketCommunicator"]


class WebsocketCommunicator(ApplicationCommunicator):
    """Open a WebSocket to ``application`` at ``path`` and exchange frames with it.

    ``connect()`` returns ``(True, subprotocol)`` when accepted and ``(False, close_code)``
    when rejected, as in Channels. When the application sends something other than what a
    step expects, the step raises ``AssertionError`` naming both.
    """

    def __init__(
        self,
        application: Any,
        path: str,
        headers: Headers | None = None,
        subprotocols: list[str] | None = None,
        spec_version: str | None = None,
    ) -> None:
        if not isinstance(path, str):
            raise TypeError(f"Expected str, got {type(path).__name__}")
        parsed = urlparse(path)
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": spec_version or "2.4"},
            "http_version": "1.1",
            "scheme": "ws",
            "path": unquote(parsed.path),
            "raw_path": parsed.path.encode("latin-1", "replace"),
            "query_string": parsed.query.encode("utf-8"),
            "root_path": "",
            "headers": list(headers or []),
            "client": ("127.0.0.1", 0),
            "server": ("testserver", 80),
            "subprotocols": list(subprotocols or []),
        }
        if spec_version:
            self.scope["spec_version"] = spec_version
        super().__init__(application, self.scope)
        self.response: dict[str, Any] = {}
        #: Headers of the accept message (or of a denial response), as in Channels 4.3.
        self.response_headers: list[tuple[bytes, bytes]] | None = None

    async def connect(self, timeout: float = 1) -> tuple[bool, Any]:
        """Send ``websocket.connect``: ``(True, subprotocol)`` or ``(False, close_code)``.

        A denial response (``websocket.http.response.start``) gives ``(False, status)``;
        its headers and body are kept in ``self.response``.
        """
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        expect_type(
            response,
            "websocket.accept",
            "websocket.close",
            "websocket.http.response.start",
            doing="connect()",
        )
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        if response["type"] == "websocket.http.response.start":
            self.response_headers = list(response.get("headers", []))
            self.response = {
                "status": response["status"],
                "headers": list(response.get("headers", [])),
                "body": await self._denial_body(timeout),
            }
            return False, response["status"]
        self.response_headers = list(response.get("headers", []))
        return True, response.get("subprotocol", None)

    async def _denial_body(self, timeout: float) -> bytes:
        body = b""
        while True:
            chunk = await self.receive_output(timeout)
            expect_type(chunk, "websocket.http.response.body", doing="connect() denial body")
            body += bytes(chunk.get("body", b""))
            if not chunk.get("more_body", False):
                return body

    async def send_to(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Send one text or binary frame to the application."""
        if (text_data is None) == (bytes_data is None):
            raise ValueError("You must supply exactly one of text_data or bytes_data")
        if text_data is not None:
            if not isinstance(text_data, str):
                raise TypeError(f"The text_data argument must be a str, got {type(text_data)}")
            await self.send_input({"type": "websocket.receive", "text": text_data})
        else:
            if not isinstance(bytes_data, bytes):
                raise TypeError(f"The bytes_data argument must be bytes, got {type(bytes_data)}")
            await self.send_input({"type": "websocket.receive", "bytes": bytes_data})

    async def send_json_to(self, data: Any) -> None:
        """Send ``data`` encoded as JSON in a text frame."""
        await self.send_to(text_data=json.dumps(data))

    async def receive_from(self, timeout: float = 1) -> str | bytes:
        """The next frame the application sent: ``str`` for text, ``bytes`` for binary."""
        response = await self.receive_output(timeout)
        expect_type(response, "websocket.send", doing="receive_from()")
        text, data = response.get("text"), response.get("bytes")
        if (text is None) == (data is None):
            raise AssertionError(
                "receive_from(): expected exactly one of 'text' or 'bytes' in websocket.send, "
                f"got {response!r}"
            )
        if text is not None:
            if not isinstance(text, str):
                raise AssertionError(f"Text frame payload is not str, got {type(text)}")
            return text
        if not isinstance(data, bytes):
            raise AssertionError(f"Binary frame payload is not bytes, got {type(data)}")
        payload: bytes = data
        return payload

    async def receive_json_from(self, timeout: float = 1) -> Any:
        """The next frame, which must be a text frame holding JSON, decoded."""
        payload = await self.receive_from(timeout)
        if not isinstance(payload, str):
            raise AssertionError(
                f"JSON data is not a text frame: expected text, got {len(payload)} bytes"
            )
        return json.loads(payload)

    async def disconnect(self, code: int = 1000, timeout: float = 1) -> None:
        """Tell the application the client closed, and wait for it to finish."""
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)
