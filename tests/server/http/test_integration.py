"""The HTTP server over real TCP and unix sockets, in-process."""

from __future__ import annotations

import asyncio
import http.client
import os
import socket
import tempfile
from typing import Any

import pytest

from tests.server.asgi_hello import app as hello_app
from tests.server.asgi_hello import echo
from tests.server.http.fakes import parse_responses
from tests.server.http.serving import port_of, request, serving


async def test_hello_over_tcp_with_keep_alive() -> None:
    async with serving(hello_app) as server:
        port = port_of(server)

        def client() -> list[tuple[int, bytes]]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            out = []
            for _ in range(3):
                conn.request("GET", "/")
                response = conn.getresponse()
                out.append((response.status, response.read()))
            conn.close()
            return out

        results = await asyncio.to_thread(client)
    assert results == [(200, b"Hello, world!")] * 3
    assert server.state is not None
    assert server.state.total_requests == 3


async def test_hello_over_unix_socket() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.sock")
        async with serving(hello_app, unix_socket=path) as server:
            assert server.bound[0].url == f"unix:{path}"
            data = await request(path, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert not os.path.exists(path)  # removed on shutdown
    [response] = parse_responses(data)
    assert response.status == 200
    assert response.body == b"Hello, world!"


async def test_pipelined_requests_over_tcp() -> None:
    async with serving(echo) as server:
        raw = b"".join(
            b"POST /%d HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n%d" % (i, i)
            for i in range(5)
        )
        data = await request(
            port_of(server), raw + b"GET /end HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
    responses = parse_responses(data)
    assert [r.header(b"x-path") for r in responses] == [b"/0", b"/1", b"/2", b"/3", b"/4", b"/end"]
    assert [r.body for r in responses[:5]] == [b"0", b"1", b"2", b"3", b"4"]


async def test_large_upload_is_streamed_back() -> None:
    payload = os.urandom(3 * 1024 * 1024)
    async with serving(echo, request_body_buffer=16 * 1024) as server:
        port = port_of(server)

        def client() -> bytes:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("PUT", "/up", body=payload)
            body = conn.getresponse().read()
            conn.close()
            return body

        body = await asyncio.to_thread(client)
    assert body == payload


async def test_slow_reader_cannot_grow_server_memory() -> None:
    sent = 0
    chunk = b"x" * 65536

    async def firehose(scope: Any, receive: Any, send: Any) -> None:
        nonlocal sent
        await send({"type": "http.response.start", "status": 200})
        while sent < 2000:  # 128 MiB if nothing held it back
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += 1
        await send({"type": "http.response.body", "body": b""})

    async with serving(firehose) as server:
        sock = socket.create_connection(("127.0.0.1", port_of(server)))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        await asyncio.sleep(1.0)
        stalled_at = sent
        sock.close()
    # Kernel socket buffers hold some megabytes; the server itself holds < 1 high-water mark.
    assert stalled_at < 400, stalled_at


async def test_pathsend_uses_the_file() -> None:
    with tempfile.NamedTemporaryFile(delete=False) as handle:
        content = os.urandom(1024 * 1024 + 17)
        handle.write(content)
        path = handle.name

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.pathsend", "path": path})

    try:
        async with serving(app) as server:
            port = port_of(server)

            def client() -> tuple[str | None, bytes]:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/f")
                response = conn.getresponse()
                body = response.read()
                conn.request("GET", "/f")  # and the connection stays usable
                again = conn.getresponse().read()
                conn.close()
                assert again == body
                return response.getheader("content-length"), body

            length, body = await asyncio.to_thread(client)
    finally:
        os.unlink(path)
    assert length == str(len(content))
    assert body == content


async def test_server_sent_events_arrive_before_the_response_ends() -> None:
    release = asyncio.Event()

    async def sse(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"data: two\n\n"})

    async with serving(sse) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(b"GET /events HTTP/1.1\r\nHost: a\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert b"transfer-encoding: chunked" in head
        first = await asyncio.wait_for(reader.readuntil(b"data: one\n\n"), 5)
        assert first.endswith(b"data: one\n\n")
        release.set()
        rest = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
        assert b"data: two" in rest
        writer.close()


async def test_client_disconnect_reaches_long_poll() -> None:
    seen = asyncio.Event()
    started = asyncio.Event()

    async def long_poll(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        started.set()
        message = await receive()
        if message["type"] == "http.disconnect":
            seen.set()

    async with serving(long_poll) as server:
        _, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(b"GET /poll HTTP/1.1\r\nHost: a\r\n\r\n")
        await asyncio.wait_for(started.wait(), 5)
        writer.close()
        await asyncio.wait_for(seen.wait(), 5)


async def test_bad_request_over_tcp() -> None:
    async with serving(hello_app) as server:
        data = await request(port_of(server), b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    [response] = parse_responses(data)
    assert response.status == 400
    assert b"Host" in response.body


async def test_websocket_upgrade_is_handed_to_the_websocket_protocol() -> None:
    websockets = pytest.importorskip("websockets")
    from websockets.asyncio.client import connect

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            assert scope["path"] == "/ws/chat"
            assert scope["query_string"] == b"room=1"
            await receive()
            await send({"type": "websocket.accept"})
            message = await receive()
            await send({"type": "websocket.send", "text": "echo:" + message["text"]})
            await receive()
            return
        await hello_app(scope, receive, send)

    assert websockets
    async with serving(app) as server:
        port = port_of(server)
        async with connect(f"ws://127.0.0.1:{port}/ws/chat?room=1") as ws:
            await ws.send("hi")
            assert await asyncio.wait_for(ws.recv(), 5) == "echo:hi"
        # the same server still answers plain HTTP
        data = await request(port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert parse_responses(data)[0].body == b"Hello, world!"


def test_pathsend_and_streaming_under_uvloop() -> None:
    """uvloop has no loop.sendfile: pathsend falls back to chunks read off the loop."""
    uvloop = pytest.importorskip("uvloop")
    with tempfile.NamedTemporaryFile(delete=False) as handle:
        content = os.urandom(700 * 1024 + 3)
        handle.write(content)
        path = handle.name

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.pathsend", "path": path})

    async def main() -> bytes:
        assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
        async with serving(app) as server:
            return await request(
                port_of(server), b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            )

    try:
        data = uvloop.run(main())
    finally:
        os.unlink(path)
    [response] = parse_responses(data)
    assert response.header(b"content-length") == str(len(content)).encode()
    assert response.body == content
