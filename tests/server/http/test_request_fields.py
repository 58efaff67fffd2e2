"""Request header fields over real sockets: whitespace, forbidden bytes, Expect on HTTP/1.0,
proxy hops that are not addresses, Daphne-Root-Path, and a response start without a status.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from narrows.server.http.response import InvalidResponse
from tests.server.http.fakes import parse_responses
from tests.server.http.serving import port_of, request, serving

WS_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def recorder() -> tuple[list[dict[str, Any]], Any]:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close"})
            return
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"ok"})

    return scopes, app


async def test_spaces_and_tabs_around_field_values_are_stripped() -> None:
    scopes, app = recorder()
    async with serving(app) as server:
        data = await request(
            port_of(server),
            b"GET / HTTP/1.1\r\nHost: x \r\nX-A: v1  \t\r\nX-B:\t two words \r\n"
            b"Connection: close\r\n\r\n",
        )
    [response] = parse_responses(data)
    assert response.status == 200  # "Host: x " is the valid host "x"
    assert scopes[0]["headers"] == [
        (b"host", b"x"),
        (b"x-a", b"v1"),
        (b"x-b", b"two words"),
        (b"connection", b"close"),
    ]


async def test_websocket_upgrade_with_trailing_space_is_a_websocket() -> None:
    scopes, app = recorder()
    async with serving(app) as server:
        data = await request(
            port_of(server),
            b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket \r\nConnection: Upgrade \r\n"
            b"Sec-WebSocket-Key: " + WS_KEY + b" \r\nSec-WebSocket-Version: 13 \r\n\r\n",
            read_until_close=False,
        )
    assert data.startswith(b"HTTP/1.1 101 ")
    assert scopes[0]["type"] == "websocket"


# Daphne 4.2.2+ refuses these in header values (CVE-2026-44546): software that splits
# strings on Unicode line boundaries (str.splitlines) treats them as line breaks.
@pytest.mark.parametrize("byte", [b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x85"])
async def test_line_boundary_bytes_in_a_field_value_are_refused(byte: bytes) -> None:
    scopes, app = recorder()
    async with serving(app) as server:
        data = await request(
            port_of(server), b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a" + byte + b"b\r\n\r\n"
        )
    [response] = parse_responses(data)
    assert response.status == 400
    assert response.header(b"connection") == b"close"
    assert scopes == []


async def test_no_100_continue_for_an_http10_request() -> None:
    bodies: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        bodies.append(message["body"])
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": message["body"]})

    async with serving(app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        with pytest.raises(TimeoutError):  # the app waits for the body: nothing is sent
            await asyncio.wait_for(reader.read(100), 0.3)
        writer.write(b"data")
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert b"100 Continue" not in data
    assert data.startswith(b"HTTP/1.0 200 OK\r\n")
    assert bodies == [b"data"]


async def test_http11_expect_100_continue_is_still_answered() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": message["body"]})

    async with serving(app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(
            b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n"
            b"Connection: close\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.write(b"data")
        rest = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n") and rest.endswith(b"data")


async def test_response_start_without_status_is_an_invalid_response() -> None:
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.start", "headers": []})
        except Exception as exc:
            errors.append(exc)
            raise

    async with serving(app) as server:
        data = await request(port_of(server), b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    [response] = parse_responses(data)
    assert response.status == 500
    [error] = errors
    assert type(error) is InvalidResponse and isinstance(error, ValueError)
    assert str(error) == 'Expected "http.response.start" with a "status", got none'


async def test_forwarded_for_hops_that_are_not_addresses_are_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scopes, app = recorder()
    async with serving(app, proxy_headers=True) as server:
        port = port_of(server)
        with caplog.at_level(logging.INFO, logger="narrows"):
            for hops in (b"<script>", b"203.0.113.7, <script>", b"nonsense:80"):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                own_port = writer.get_extra_info("sockname")[1]
                writer.write(
                    b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: " + hops + b"\r\n"
                    b"X-Forwarded-Port: 81\r\nConnection: close\r\n\r\n"
                )
                await asyncio.wait_for(reader.read(), 5)
                writer.close()
                assert scopes[-1]["client"] == ("127.0.0.1", own_port)
            data = await request(
                port,
                b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.7\r\n"
                b"Connection: close\r\n\r\n",
            )
    assert parse_responses(data)[0].status == 200
    assert scopes[-1]["client"] == ("203.0.113.7", 0)
    warnings = [r for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    assert len(warnings) == 1
    assert "not an IP address" in warnings[0].getMessage()


async def test_daphne_root_path_from_a_trusted_peer() -> None:
    scopes, app = recorder()
    async with serving(app, root_path="/ignored") as server:
        port = port_of(server)
        await request(
            port,
            b"GET /x HTTP/1.1\r\nHost: a\r\nDaphne-Root-Path: /f%C3%B6rum \r\n"
            b"Connection: close\r\n\r\n",
        )
        await request(
            port,
            b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Daphne-Root-Path: /chat\r\nSec-WebSocket-Key: " + WS_KEY + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n",
            read_until_close=False,
        )
        await request(port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    http_scope, ws_scope, plain_scope = scopes
    assert http_scope["root_path"] == "/förum"
    assert ws_scope["type"] == "websocket"
    assert ws_scope["root_path"] == "/chat"
    assert plain_scope["root_path"] == "/ignored"
    for scope in scopes:
        assert all(name != b"daphne-root-path" for name, _ in scope["headers"])


async def test_daphne_root_path_from_an_untrusted_peer_is_dropped() -> None:
    scopes, app = recorder()
    async with serving(app, forwarded_allow_ips=("10.0.0.0/8",)) as server:
        await request(
            port_of(server),
            b"GET / HTTP/1.1\r\nHost: a\r\nDaphne-Root-Path: /forum\r\nConnection: close\r\n\r\n",
        )
    assert scopes[0]["root_path"] == ""
    assert all(name != b"daphne-root-path" for name, _ in scopes[0]["headers"])
