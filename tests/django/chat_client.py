"""A minimal HTTP + WebSocket client for the chat demo: logs in like a browser does."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.parse
import urllib.request
from typing import Any

from websockets.sync.client import ClientConnection, connect


class ChatUser:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, str, str]:
        """(status, final URL, body) following redirects."""
        with self.opener.open(self.base + path, timeout=10) as response:
            return response.status, response.url, response.read().decode()

    def login(self, username: str, password: str) -> None:
        _, _, page = self.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, page
        form = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token[1], "username": username, "password": password}
        ).encode()
        request = urllib.request.Request(
            self.base + "/accounts/login/", data=form, headers={"Referer": self.base + "/"}
        )
        with self.opener.open(request, timeout=10) as response:
            assert response.url == self.base + "/", f"login failed: {response.url}"

    def websocket(self, path: str) -> ClientConnection:
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.jar)
        headers = {"Cookie": cookies} if cookies else {}
        return connect(
            self.base.replace("http", "ws", 1) + path,
            origin=self.base,  # type: ignore[arg-type]
            additional_headers=headers,
            open_timeout=10,
        )


def receive_json(ws: ClientConnection, timeout: float = 10.0) -> Any:
    return json.loads(ws.recv(timeout=timeout))
