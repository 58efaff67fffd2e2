"""The ``narrows`` command: flags -> Config, and a real process serving requests."""

from __future__ import annotations

import http.client

import pytest

from narrows.server.cli import build_config, build_parser
from narrows.server.config import Config
from tests.helpers import free_port, narrows_process


def get(port: int, path: str = "/") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_serves_hello_world_as_a_process() -> None:
    port = free_port()
    with narrows_process(["-p", str(port), "tests.server.asgi_hello:app"], port=port):
        status, headers, body = get(port)
    assert status == 200
    assert body == b"Hello, world!"
    assert headers["server"] == "narrows"
    assert headers["content-length"] == "13"


def test_application_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_config([])
    assert info.value.code == 2
    assert "application" in capsys.readouterr().err


def test_defaults_are_config_defaults() -> None:
    config = build_config(["mod:app"])
    assert config == Config(application="mod:app")


def test_help_groups_options() -> None:
    text = build_parser().format_help()
    for group in ("where to listen", "TLS", "processes", "logging", "proxies", "WebSocket"):
        assert group in text
