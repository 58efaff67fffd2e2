"""Live-server cases, run by ``test_live.py`` in a pytest process of their own (they need
the file-based database of ``auth_live_settings``): a real narrows server in a child
process serving HTTP, static files and an authenticated WebSocket."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from narrows.testing import ChannelsLiveServerTestCase
from narrows.testing.live import NarrowsProcess


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return response.status, response.read().decode(), headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), {k.lower(): v for k, v in exc.headers.items()}


class LiveServerTests(ChannelsLiveServerTestCase):
    def origin(self) -> str:
        return self.live_server_url

    def test_urls(self) -> None:
        assert self.live_server_url.startswith("http://localhost:")
        assert self.live_server_ws_url == "ws" + self.live_server_url[4:]

    def test_http_is_served_by_django(self) -> None:
        status, body, headers = fetch(self.live_server_url + "/")
        assert (status, body) == (200, "hello from the live server")
        assert headers.get("server") == "narrows"

    def test_the_server_sees_the_test_database(self) -> None:
        User.objects.create_user("carol", password="x")
        User.objects.create_user("dave", password="x")
        assert fetch(self.live_server_url + "/count/")[1] == "2"

    def test_static_files_are_served(self) -> None:
        status, body, _ = fetch(self.live_server_url + "/static/live.txt")
        assert (status, body) == (200, "static from the live server\n")

    def test_websocket_sees_the_user_logged_in_over_http(self) -> None:
        User.objects.create_user("erin", password="x")
        _, _, headers = fetch(self.live_server_url + "/login/erin/")
        session_cookie = headers["set-cookie"].split(";", 1)[0]
        with connect(
            self.live_server_ws_url + "/ws/whoami/",
            origin=self.origin(),  # type: ignore[arg-type]
            additional_headers={"Cookie": session_cookie},
            open_timeout=10,
        ) as ws:
            assert ws.recv(timeout=10) == "erin"

    def test_login_during_the_handshake_reaches_the_browser(self) -> None:
        User.objects.create_user("frank", password="x")
        with connect(
            self.live_server_ws_url + "/ws/login/frank/",
            origin=self.origin(),  # type: ignore[arg-type]
            additional_headers={"Cookie": "csrftoken=" + "a" * 32},
            open_timeout=10,
        ) as ws:
            assert ws.response is not None
            set_cookie = ws.response.headers.get_all("Set-Cookie")
        cookies = dict(c.split(";", 1)[0].split("=", 1) for c in set_cookie)
        assert cookies["csrftoken"] and cookies["csrftoken"] != "a" * 32  # rotated
        session_cookie = "sessionid=" + cookies["sessionid"]
        _, body, _ = fetch(self.live_server_url + "/whoami/", {"Cookie": session_cookie})
        assert body == "frank"  # the Django view sees the login made over the WebSocket

    def test_websocket_anonymous_without_cookie(self) -> None:
        with connect(
            self.live_server_ws_url + "/ws/whoami/",
            origin=self.origin(),  # type: ignore[arg-type]
            open_timeout=10,
        ) as ws:
            assert ws.recv(timeout=10) == "anonymous"

    def test_websocket_from_another_origin_gets_403(self) -> None:
        for origin in ("http://evil.example.org", None):
            with self.subTest(origin=origin):
                try:
                    with connect(
                        self.live_server_ws_url + "/ws/whoami/",
                        origin=origin,  # type: ignore[arg-type]
                        open_timeout=10,
                    ):
                        raise AssertionError("the handshake should have been refused")
                except InvalidStatus as exc:
                    assert exc.response.status_code == 403


@override_settings(NARROWS_LIVE_MARK="from the test class")
class LiveServerSettingsTests(ChannelsLiveServerTestCase):
    serve_static = False

    def test_class_level_override_settings_reach_the_server(self) -> None:
        assert fetch(self.live_server_url + "/setting/")[1] == "from the test class"


class LiveServerWithoutStaticTests(ChannelsLiveServerTestCase):
    serve_static = False

    def test_static_files_are_not_served(self) -> None:
        status, _, _ = fetch(self.live_server_url + "/static/live.txt")
        assert status == 404
        assert fetch(self.live_server_url + "/")[0] == 200


def broken_application() -> None:
    raise RuntimeError("this application cannot be built")


def test_a_server_that_cannot_start_is_reported() -> None:
    process = NarrowsProcess("localhost", broken_application)  # type: ignore[arg-type]
    process.start()
    try:
        with pytest.raises(RuntimeError, match="exited before it was ready"):
            process.wait_ready(timeout=60)
    finally:
        process.stop()
    assert not process.process.is_alive()
