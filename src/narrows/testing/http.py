"""``HttpCommunicator``: test an HTTP application with one request, without a server."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlparse

from narrows.testing.application import ApplicationCommunicator, expect_type
from narrows.types import Headers

__all__ = ["HttpCommunicator"]


class HttpCommunicator(ApplicationCommunicator):
    """Send one request to ``application`` and collect its response.

    ``await get_response()`` returns ``{"status": int, "headers": [...], "body": bytes}``
    (plus any other keys of ``http.response.start``), as in Channels.
    """

    def __init__(
        self,
        application: Any,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Headers | None = None,
    ) -> None:
        if not isinstance(body, bytes):
            raise TypeError(f"HttpCommunicator body must be bytes, got {type(body).__name__}")
        parsed = urlparse(path)
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": "http",
            "path": unquote(parsed.path),
            "raw_path": parsed.path.encode("latin-1", "replace"),
            "query_string": parsed.query.encode("utf-8"),
            "root_path": "",
            "headers": list(headers or []),
            "client": ("127.0.0.1", 0),
            "server": ("testserver", 80),
        }
        self.body = body
        self.sent_request = False
        super().__init__(application, self.scope)

    async def get_response(self, timeout: float = 1) -> dict[str, Any]:
        """Send the request (once) and return the complete response."""
        if not self.sent_request:
            self.sent_request = True
            await self.send_input({"type": "http.request", "body": self.body})
        start = await self.receive_output(timeout)
        expect_type(start, "http.response.start", doing="get_response()")
        response: dict[str, Any] = {k: v for k, v in start.items() if k != "type"}
        response.setdefault("headers", [])
        response["headers"] = list(response["headers"])
        body = b""
        while True:
            chunk = await self.receive_output(timeout)
            expect_type(chunk, "http.response.body", doing="get_response() body")
            body += bytes(chunk.get("body", b""))
            if not chunk.get("more_body", False):
                break
        response["body"] = body
        return response
