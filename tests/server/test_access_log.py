"""Access log: Daphne's format, stdout or file, injection-safe, never fatal."""

from __future__ import annotations

import io
import os
import re
import tempfile

import pytest

from narrows.server.access_log import AccessLog
from tests.helpers import free_port, narrows_process
from tests.server.asgi_hello import app as hello_app
from tests.server.http.serving import port_of, request, serving

LINE = re.compile(r'^(\S+) - - \[(\d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d)\] "(.*)" (\S+) (\S+)$')


def test_http_line_format() -> None:
    stream = io.StringIO()
    AccessLog(stream).http(("10.0.0.1", 5555), "GET", "/path", 200, 12)
    match = LINE.match(stream.getvalue().rstrip("\n"))
    assert match is not None
    assert match.group(1) == "10.0.0.1:5555"
    assert match.group(3) == "GET /path"
    assert (match.group(4), match.group(5)) == ("200", "12")


def test_websocket_events() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    for event in ("WSCONNECTING", "WSCONNECT", "WSREJECT", "WSDISCONNECT"):
        log.websocket(event, None, "/ws/")  # type: ignore[arg-type]
    lines = stream.getvalue().splitlines()
    assert [LINE.match(line).group(3) for line in lines] == [  # type: ignore[union-attr]
        "WSCONNECTING /ws/",
        "WSCONNECT /ws/",
        "WSREJECT /ws/",
        "WSDISCONNECT /ws/",
    ]
    assert all(line.startswith("- - - [") and line.endswith('" - -') for line in lines)
    with pytest.raises(ValueError, match="WSBOGUS"):
        log.websocket("WSBOGUS", None, "/")  # type: ignore[arg-type]


def test_control_characters_cannot_forge_lines() -> None:
    stream = io.StringIO()
    evil = '/a\n127.0.0.1 - - [01/Jan/2026:00:00:00] "GET /admin" 200 1\r\x1b[2J"'
    AccessLog(stream).http(("1.2.3.4", 1), "GET", evil, 404, 0)
    text = stream.getvalue()
    assert text.count("\n") == 1
    assert "\r" not in text and "\x1b" not in text
    assert "\\x0a" in text and "\\x22" in text
    match = LINE.match(text.rstrip("\n"))
    assert match is not None and match.group(4) == "404" and match.group(5) == "-"


def test_unwritable_file_is_reported_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    log = AccessLog("/nonexistent-dir/narrows/access.log")
    log.http(("1.2.3.4", 1), "GET", "/", 200, 1)  # no exception
    assert "not writable" in caplog.text


async def test_server_writes_one_line_per_request_to_a_file() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "access.log")
        async with serving(hello_app, access_log=path) as server:
            raw = b"GET /x?y=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            await request(port_of(server), raw)
        with open(path) as handle:
            lines = handle.read().splitlines()
    assert len(lines) == 1
    match = LINE.match(lines[0])
    assert match is not None
    assert match.group(1).startswith("127.0.0.1:")
    assert match.group(3) == "GET /x"
    assert (match.group(4), match.group(5)) == ("200", "13")


def test_access_log_dash_is_stdout() -> None:
    port = free_port()
    args = ["--access-log", "-", "-p", str(port), "tests.server.asgi_hello:app"]
    with narrows_process(args, port=port) as proc:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/logged")
        conn.getresponse().read()
        conn.close()
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert re.search(r'127\.0\.0\.1:\d+ - - \[.*\] "GET /logged" 200 13', out), out


def test_off_by_default() -> None:
    port = free_port()
    with narrows_process(["-p", str(port), "tests.server.asgi_hello:app"], port=port) as proc:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/quiet")
        conn.getresponse().read()
        conn.close()
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert "/quiet" not in out
