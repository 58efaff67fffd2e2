"""Security at the edge: proxy headers trusted only from ``--forwarded-allow-ips``, and no
client-chosen text (path, header, close reason) reaching a log line unescaped.

Origin validation and session cycling are tested in tests/framework/.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, free_port, wait_for_port
from tests.reliability.clients import ws_exchange
from tests.server.http.serving import port_of, request, serving

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # anything but \t and \n


async def whoami(scope: dict[str, Any], receive: Any, send: Any) -> None:
    answer = json.dumps({"client": scope["client"][0], "scheme": scope["scheme"]}).encode()
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer})
    else:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": answer})
        await send({"type": "websocket.close", "code": 1000})


SPOOF = (
    b"X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\n"
    b"X-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n"
)
KEY = base64.b64encode(b"security-test-k!")


async def http_identity(port: int) -> dict[str, str]:
    raw = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + SPOOF + b"\r\n"
    answer = await request(port, raw)
    return json.loads(answer.partition(b"\r\n\r\n")[2])  # type: ignore[no-any-return]


async def ws_identity(port: int) -> dict[str, str]:
    raw = (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n" + SPOOF + b"\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await reader.readuntil(b"\r\n\r\n")
    head = await reader.readexactly(2)
    payload = await reader.readexactly(head[1] & 0x7F)
    writer.close()
    return json.loads(payload)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("options", "believed"),
    [
        ({"proxy_headers": True, "forwarded_allow_ips": ("10.1.2.3",)}, None),
        ({"proxy_headers": True, "forwarded_allow_ips": ("192.0.2.0/24", "::1")}, None),
        ({"proxy_headers": False, "forwarded_allow_ips": ("*",)}, None),
        # The rightmost address that is not a trusted proxy: the left end is the client's word.
        ({"proxy_headers": True}, "203.0.113.9"),  # the default: 127.0.0.1 and ::1
        ({"proxy_headers": True, "forwarded_allow_ips": ("127.0.0.0/8",)}, "203.0.113.9"),
        # With "*" every hop is a trusted proxy, so the leftmost is the client (as uvicorn).
        ({"proxy_headers": True, "forwarded_allow_ips": ("*",)}, "198.51.100.1"),
    ],
)
async def test_proxy_headers_believed_only_from_allowed_peers(
    options: dict[str, Any], believed: str | None, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    async with serving(whoami, access_log=str(log), **options) as server:
        port = port_of(server)
        http, ws = await http_identity(port), await ws_identity(port)
    if believed:
        assert http == {"client": believed, "scheme": "https"}
        assert ws == {"client": believed, "scheme": "wss"}
    else:
        assert http == {"client": "127.0.0.1", "scheme": "http"}
        assert ws == {"client": "127.0.0.1", "scheme": "ws"}
    lines = log.read_text().splitlines()
    assert lines and all(
        line.startswith(f"{believed}:443 " if believed else "127.0.0.1:") for line in lines
    )


HOSTILE_PATHS = [
    "/a%0aFORGED%20-%20-%20[01/Jan/2026:00:00:00]%20%22GET%20/admin%22%20200%202",
    "/b%0d%0aFORGED",
    "/c%1b[31mred%1b[0m",
    "/d%22quoted%22%5cback",
    "/e%00nul%7fdel%c2%9bcsi",
]


async def test_access_log_escapes_paths(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    async with serving(whoami, access_log=str(log)) as server:
        port = port_of(server)
        for path in HOSTILE_PATHS:
            raw = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            assert (await request(port, raw)).startswith(b"HTTP/1.1 200 ")
            ws = (
                f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {KEY.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
            assert (await ws_exchange(port, ws)).startswith(b"HTTP/1.1 101 ")
    text = log.read_text(encoding="utf-8")
    lines = text.splitlines()
    # one HTTP line, and WSCONNECTING/WSCONNECT/WSDISCONNECT-style lines, per path; none forged
    assert not any(line.startswith("FORGED") for line in lines)
    assert CONTROL.search(text) is None
    assert all(re.match(r"^127\.0\.0\.1:\d+ - - \[", line) for line in lines), lines
    assert r"/a\x0aFORGED" in text and r"\x1b[31mred" in text and r"\x22quoted\x22\x5cback" in text
    assert len([line for line in lines if '"GET ' in line]) == len(HOSTILE_PATHS)


async def ws_bad_frame_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
    elif scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def test_server_log_lines_escape_client_text(tmp_path: Path) -> None:
    """The server's own log (not the access log) names paths and quotes refused header
    values: run the real command and read its output."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "narrows", f"{__name__}:ws_bad_frame_app", "-p", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port)
        sends = [
            # a refused Transfer-Encoding value with C1 controls in it (obs-text for llhttp)
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \x9b31mFORGED\x85x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\xc2\x9b\r\n\r\n",  # a refused Host value
            # a WebSocket on a path with a newline in it, then a protocol error to log
            b"GET /ws%0aFORGED%1b[2J HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n\x82\x01x",
        ]
        for raw in sends:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(raw)
                while sock.recv(65536):
                    pass
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.decode("utf-8", "replace")
    assert "Invalid HTTP request" in text and "closed with 1002" in text, text
    assert not any(line.startswith("FORGED") for line in text.splitlines()), text
    assert CONTROL.search(text) is None, text
    assert b"\xc2\x9b" not in out and b"\x9b" not in out and b"\x1b" not in out


async def test_forwarded_client_cannot_inject_into_the_access_log(tmp_path: Path) -> None:
    """A trusted proxy passes on whatever the client put in X-Forwarded-For: bytes 0x80-0xFF
    get through the parser (obs-text). 0x85 (NEL) is refused outright; any other hop that is
    not an IP address is ignored, so the log shows the peer, never the client's bytes."""
    log = tmp_path / "access.log"
    async with serving(whoami, access_log=str(log), proxy_headers=True) as server:
        nel = b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: evil\x85FORGED\r\n\r\n"
        assert (await request(port_of(server), nel)).startswith(b"HTTP/1.1 400 ")
        raw = (
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"X-Forwarded-For: \x9b31mevil\xa0FORGED\r\n\r\n"
        )
        assert (await request(port_of(server), raw)).startswith(b"HTTP/1.1 200 ")
    text = log.read_text(encoding="utf-8")
    assert CONTROL.search(text) is None
    assert "evil" not in text and "FORGED" not in text
    assert text.startswith("127.0.0.1:")
