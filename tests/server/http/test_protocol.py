"""HTTPProtocol + ASGI cycle over a fake transport: bytes in, ASGI messages and bytes out."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from types import MappingProxyType
from typing import Any

import pytest

from narrows.server.config import Config
from narrows.server.http.date import DateHeader
from tests.server.http.fakes import Connection, parse_responses

GET = b"GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.mark.parametrize("bytewise", [False, True])
async def test_hello_response_and_scope(bytewise: bool) -> None:
    scopes: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        messages.append(await receive())
        await hello(scope, receive, send)

    conn = Connection(app, Config(lifespan="off", root_path="/mnt"))
    conn.state.lifespan_state["shared"] = 1
    conn.send(GET, bytewise=bytewise)
    [response] = await conn.responses()
    assert response.status == 200
    assert response.body == b"hello"
    assert response.header(b"content-length") == b"5"
    assert response.header(b"server") == b"narrows"
    assert response.header(b"date") is not None
    assert response.header(b"x-a") == b"1"
    scope = scopes[0]
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/path"
    assert scope["raw_path"] == b"/path"
    assert scope["query_string"] == b"q=1"
    assert scope["root_path"] == "/mnt"
    assert scope["headers"] == [(b"host", b"example.com")]
    assert scope["client"] == ("127.0.0.1", 51000)
    assert scope["server"] == ("127.0.0.1", 8000)
    assert scope["state"] == {"shared": 1}
    assert scope["state"] is not conn.state.lifespan_state
    assert "http.response.trailers" in scope["extensions"]
    assert "http.response.pathsend" in scope["extensions"]
    assert messages == [{"type": "http.request", "body": b"", "more_body": False}]
    assert not conn.transport.closed


async def test_one_write_for_a_single_message_response() -> None:
    writes: list[bytes] = []
    conn = Connection(hello)
    original = conn.transport.write

    def spy(data: bytes) -> None:
        writes.append(bytes(data))
        original(data)

    conn.transport.write = spy  # type: ignore[method-assign]
    conn.send(GET)
    await conn.responses()
    assert len(writes) == 1


async def test_percent_decoded_path_and_tls_scheme_and_unix_server() -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await hello(scope, receive, send)

    conn = Connection(app, peer=None, sock="/tmp/x.sock", tls=True)
    conn.send(b"GET /a%20b/%C3%A9?x HTTP/1.1\r\nHost: a\r\n\r\n")
    await conn.responses()
    assert scopes[0]["path"] == "/a b/é"
    assert scopes[0]["raw_path"] == b"/a%20b/%C3%A9"
    assert scopes[0]["scheme"] == "https"
    assert scopes[0]["client"] is None
    assert scopes[0]["server"] == ("/tmp/x.sock", None)


async def test_absolute_form_target() -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await hello(scope, receive, send)

    conn = Connection(app)
    conn.send(b"GET http://example.com/abs?y=2 HTTP/1.1\r\nHost: example.com\r\n\r\n")
    await conn.responses()
    assert scopes[0]["path"] == "/abs"
    assert scopes[0]["query_string"] == b"y=2"


async def test_keep_alive_serves_sequential_requests() -> None:
    conn = Connection(hello)
    conn.send(GET)
    await conn.responses(1)
    conn.send(GET)
    responses = await conn.responses(2)
    assert [r.status for r in responses] == [200, 200]
    assert not conn.transport.closed


@pytest.mark.parametrize("bytewise", [False, True])
async def test_pipelined_responses_in_request_order(bytewise: bool) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        delay = {"/1": 0.05, "/2": 0.0, "/3": 0.01}[scope["path"]]
        await asyncio.sleep(delay)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    conn = Connection(app)
    data = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in (1, 2, 3))
    conn.send(data, bytewise=bytewise)
    responses = await conn.responses(3)
    assert [r.body for r in responses] == [b"/1", b"/2", b"/3"]


async def test_pipelining_pauses_reading_until_served() -> None:
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await hello(scope, receive, send)

    conn = Connection(app)
    conn.send(GET + GET)
    await conn.settle()
    assert conn.transport.reading is False
    release.set()
    await conn.responses(2)
    await conn.settle()
    assert conn.transport.reading is True


async def test_request_body_is_streamed_as_it_arrives() -> None:
    received: list[dict[str, Any]] = []
    first = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.append(message)
            first.set()
            if not message["more_body"]:
                break
        await hello(scope, receive, send)

    conn = Connection(app)
    conn.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabc")
    await asyncio.wait_for(first.wait(), 5)
    assert received == [{"type": "http.request", "body": b"abc", "more_body": True}]
    conn.send(b"def")
    await conn.responses()
    assert received[-1] == {"type": "http.request", "body": b"def", "more_body": False}


@pytest.mark.parametrize("bytewise", [False, True])
async def test_chunked_request_body(bytewise: bool) -> None:
    bodies: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message["body"]
            if not message["more_body"]:
                break
        bodies.append(body)
        await hello(scope, receive, send)

    conn = Connection(app)
    conn.send(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        bytewise=bytewise,
    )
    await conn.responses()
    assert bodies == [b"hello world"]


async def test_reading_pauses_while_body_is_not_consumed() -> None:
    go = asyncio.Event()
    total = 0

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal total
        await go.wait()
        while True:
            message = await receive()
            total += len(message["body"])
            if not message["more_body"]:
                break
        await hello(scope, receive, send)

    conn = Connection(app, Config(lifespan="off", request_body_buffer=1000))
    conn.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + b"x" * 1500)
    await conn.settle()
    assert conn.transport.reading is False
    go.set()
    await conn.settle()
    assert conn.transport.reading is True
    conn.send(b"x" * 3500)
    await conn.responses()
    assert total == 5000


async def test_send_waits_only_while_transport_is_over_high_water() -> None:
    progress: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        progress.append("first")
        await send({"type": "http.response.body", "body": b"b", "more_body": True})
        progress.append("second")
        await send({"type": "http.response.body", "body": b"c"})

    conn = Connection(app)
    assert conn.transport.high_water == conn.config.flow_control_high_water
    conn.protocol.pause_writing()
    conn.send(GET)
    await conn.settle()
    assert progress == []  # the very first send already waits: buffer is over the mark
    conn.protocol.resume_writing()
    [response] = await conn.responses()
    assert progress == ["first", "second"]
    assert response.body == b"abc"
    assert response.header(b"transfer-encoding") == b"chunked"


async def test_expect_100_continue_sent_when_the_app_reads() -> None:
    reading = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await reading.wait()
        message = await receive()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": message["body"]})

    conn = Connection(app)
    conn.send(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
    await conn.settle()
    assert conn.transport.data == b""
    reading.set()
    await conn.settle()
    assert bytes(conn.transport.data) == b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.send(b"data")
    responses = await conn.responses(2)
    assert [r.status for r in responses] == [100, 200]
    assert responses[1].body == b"data"


async def test_no_100_continue_when_app_answers_without_reading() -> None:
    conn = Connection(hello)
    conn.send(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
    [response] = await conn.responses()
    assert response.status == 200
    assert b"100 Continue" not in conn.transport.data
    # the unread body makes the connection unusable: it is closed
    assert await conn.closed()


async def test_disconnect_is_reported_to_a_waiting_app() -> None:
    got: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        got.append(await receive())
        got.append(await receive())  # long-poll: waits for the disconnect

    conn = Connection(app)
    conn.send(GET)
    await conn.settle()
    conn.protocol.connection_lost(None)
    await conn.settle()
    assert got == [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
    ]


async def test_disconnected_app_is_cancelled_after_application_close_timeout() -> None:
    cancelled = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    conn = Connection(app, Config(lifespan="off", application_close_timeout=0.05))
    conn.send(GET)
    await conn.settle()
    conn.protocol.connection_lost(None)
    await asyncio.wait_for(cancelled.wait(), 5)


async def test_sends_after_disconnect_are_ignored() -> None:
    done = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        assert (await receive())["type"] == "http.request"
        assert (await receive())["type"] == "http.disconnect"
        await send({"type": "http.response.body", "body": b"b"})
        done.set()

    conn = Connection(app)
    conn.send(GET)
    await conn.settle()
    conn.transport.close()
    await asyncio.wait_for(done.wait(), 5)


async def test_head_has_headers_but_no_body() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
        )
        await send({"type": "http.response.body", "body": b"hello"})

    conn = Connection(app)
    conn.send(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    await conn.settle()
    data = bytes(conn.transport.data)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 5\r\n" in data
    assert data.endswith(b"\r\n\r\n")
    conn.send(GET)  # the connection is still in step
    await conn.settle()
    assert bytes(conn.transport.data).count(b"HTTP/1.1 200") == 2


@pytest.mark.parametrize("status", [204, 304])
async def test_no_body_statuses(status: int) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status})
        await send({"type": "http.response.body", "body": b"ignored"})

    conn = Connection(app)
    conn.send(GET)
    await conn.settle()
    data = bytes(conn.transport.data)
    assert data.startswith(b"HTTP/1.1 %d " % status)
    assert b"content-length" not in data
    assert b"transfer-encoding" not in data
    assert b"ignored" not in data


async def test_streaming_response_is_chunked() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        for part in (b"data: 1\n\n", b"data: 2\n\n"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    conn = Connection(app)
    conn.send(GET)
    [response] = await conn.responses()
    assert response.header(b"transfer-encoding") == b"chunked"
    assert response.body == b"data: 1\n\ndata: 2\n\n"
    assert bytes(conn.transport.data).endswith(b"0\r\n\r\n")


async def test_http10_streaming_response_is_close_delimited() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": b"cd"})

    conn = Connection(app)
    conn.send(b"GET / HTTP/1.0\r\n\r\n")
    assert await conn.closed()
    data = bytes(conn.transport.data)
    assert data.startswith(b"HTTP/1.0 200 OK\r\n")
    assert b"transfer-encoding" not in data
    assert b"connection: close\r\n" in data
    assert data.endswith(b"\r\n\r\nabcd")


async def test_http10_keep_alive() -> None:
    conn = Connection(hello)
    conn.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    [response] = await conn.responses()
    assert response.header(b"connection") == b"keep-alive"
    assert not conn.transport.closed


async def test_connection_close_request_closes_after_response() -> None:
    conn = Connection(hello)
    conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    [response] = await conn.responses()
    assert response.header(b"connection") == b"close"
    assert await conn.closed()


async def test_response_trailers() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"abc"})
        await send(
            {"type": "http.response.trailers", "headers": [(b"x-a", b"1")], "more_trailers": True}
        )
        await send({"type": "http.response.trailers", "headers": [(b"x-b", b"2")]})

    conn = Connection(app)
    conn.send(GET)
    await conn.settle()
    data = bytes(conn.transport.data)
    assert b"transfer-encoding: chunked\r\n" in data
    assert data.endswith(b"3\r\nabc\r\n0\r\nx-a: 1\r\nx-b: 2\r\n\r\n")


async def test_trailers_dropped_on_http10() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"abc"})
        await send({"type": "http.response.trailers", "headers": [(b"x-a", b"1")]})

    conn = Connection(app)
    conn.send(b"GET / HTTP/1.0\r\n\r\n")
    assert await conn.closed()
    assert bytes(conn.transport.data).endswith(b"\r\n\r\nabc")


async def test_exception_before_start_is_500_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("boom")

    conn = Connection(app)
    with caplog.at_level(logging.ERROR, logger="narrows"):
        conn.send(GET)
        [response] = await conn.responses()
    assert response.status == 500
    assert await conn.closed()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None and "boom" in str(errors[0].exc_info[1])


async def test_exception_after_start_closes_connection(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("late boom")

    conn = Connection(app)
    with caplog.at_level(logging.ERROR, logger="narrows"):
        conn.send(GET)
        assert await conn.closed()
    data = bytes(conn.transport.data)
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"500" not in data
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


async def test_app_returning_without_response_is_500(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    conn = Connection(app)
    conn.send(GET)
    [response] = await conn.responses()
    assert response.status == 500
    assert "without completing the response" in caplog.text


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-a", b"evil\r\nSet-Cookie: x=1")],
        [(b"x-a", b"a\nb")],
        [(b"x-a", b"a\x00b")],
        [(b"bad name", b"v")],
        [("str-name", b"v")],
    ],
)
async def test_unsafe_response_headers_are_refused_with_500(
    headers: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"x"})

    conn = Connection(app)
    conn.send(GET)
    [response] = await conn.responses()
    assert response.status == 500
    assert b"Set-Cookie" not in conn.transport.data
    assert b"evil" not in conn.transport.data


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (
            [{"type": "http.response.body", "body": b""}],
            'Expected ASGI message "http.response.start", got "http.response.body"',
        ),
        (
            [{"type": "http.response.start", "status": 200}] * 2,
            'Expected ASGI message "http.response.body" or "http.response.pathsend", '
            'got "http.response.start"',
        ),
        (
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.body", "body": b""},
                {"type": "http.response.body", "body": b""},
            ],
            'Unexpected ASGI message "http.response.body" sent, after the response was complete',
        ),
        (
            [{"type": "http.response.start", "status": "200"}],
            "Expected an int HTTP status 100-999, got '200'",
        ),
        (
            ["http.response.start"],
            "Expected an ASGI message (a dict), got str: 'http.response.start'",
        ),
    ],
)
async def test_message_order_errors_name_expected_and_got(
    messages: list[dict[str, Any]], expected: str
) -> None:
    errors: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            for message in messages:
                await send(message)
        except Exception as exc:
            errors.append(str(exc))

    conn = Connection(app)
    conn.send(GET)
    await conn.settle()
    assert errors == [expected]


async def test_a_message_mapping_other_than_dict_is_read_like_a_dict() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(MappingProxyType({"type": "http.response.start", "status": 201}))
        await send(MappingProxyType({"type": "http.response.body", "body": b"mapped"}))

    conn = Connection(app)
    conn.send(GET)
    [response] = await conn.responses()
    assert (response.status, response.body) == (201, b"mapped")


async def test_body_longer_than_content_length_is_refused() -> None:
    errors: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        try:
            await send({"type": "http.response.body", "body": b"abc"})
        except Exception as exc:
            errors.append(str(exc))
            raise

    conn = Connection(app)
    conn.send(GET)
    [response] = await conn.responses()
    assert response.status == 500
    assert errors == ["Response body longer than its Content-Length (2 bytes)"]


async def test_short_body_closes_the_connection() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"9")]}
        )
        await send({"type": "http.response.body", "body": b"abc"})

    conn = Connection(app)
    conn.send(GET)
    assert await conn.closed()


@pytest.mark.parametrize("bytewise", [False, True])
@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
        (b"GARBAGE\r\n\r\n", 400),
    ],
)
async def test_bad_requests_get_status_and_close(
    request_bytes: bytes, status: int, bytewise: bool
) -> None:
    called = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal called
        called = True

    conn = Connection(app)
    conn.send(request_bytes, bytewise=bytewise)
    [response] = await conn.responses()
    assert response.status == status
    assert response.header(b"connection") == b"close"
    assert await conn.closed()
    assert not called


async def test_bad_request_after_a_good_one_is_answered_in_order() -> None:
    conn = Connection(hello)
    conn.send(GET + b"GET / HTTP/1.1\r\n\r\n")
    responses = await conn.responses(2)
    assert [r.status for r in responses] == [200, 400]
    assert await conn.closed()


async def test_malformed_chunk_in_body_being_served() -> None:
    got: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        got.append(await receive())
        got.append(await receive())

    conn = Connection(app)
    conn.send(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    await conn.settle()
    conn.send(b"zz\r\n")
    [response] = await conn.responses()
    assert response.status == 400
    assert await conn.closed()
    await conn.settle()
    assert got[-1] == {"type": "http.disconnect"}


async def test_limit_concurrency_answers_503() -> None:
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await hello(scope, receive, send)

    config = Config(lifespan="off", limit_concurrency=1)
    first = Connection(app, config)
    first.send(GET)
    await first.settle()
    second = Connection(app, ctx=first.ctx)  # another connection to the same server
    second.send(GET)
    [response] = await second.responses()
    assert response.status == 503
    release.set()
    [ok] = await first.responses()
    assert ok.status == 200


async def test_keep_alive_timeout_closes_idle_connection() -> None:
    conn = Connection(hello, Config(lifespan="off", keep_alive_timeout=0.05))
    conn.send(GET)
    await conn.responses()
    assert await conn.closed(timeout=2)


async def test_header_timeout_answers_408_and_closes() -> None:
    conn = Connection(hello, Config(lifespan="off", header_timeout=0.05, keep_alive_timeout=60))
    conn.send(b"GET / HTTP/1.1\r\nHost: a\r\n")  # never finishes the head
    assert await conn.closed(timeout=2)
    [response] = parse_responses(bytes(conn.transport.data))
    assert response.status == 408


async def test_http_timeout_answers_503() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(30)

    conn = Connection(app, Config(lifespan="off", http_timeout=0.05))
    conn.send(GET)
    [response] = await conn.responses()
    assert response.status == 503
    assert b"Application failed to respond within time limit" in response.body


async def test_shutdown_closes_idle_at_once_and_busy_after_response() -> None:
    idle = Connection(hello)
    idle.protocol.shutdown()
    assert await idle.closed()

    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await hello(scope, receive, send)

    busy = Connection(app)
    busy.send(GET)
    await busy.settle()
    busy.protocol.shutdown()
    await busy.settle()
    assert not busy.transport.closed
    release.set()
    [response] = await busy.responses()
    assert response.status == 200
    assert await busy.closed()


async def test_force_close_aborts_and_cancels() -> None:
    cancelled = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    conn = Connection(app)
    conn.send(GET)
    await conn.settle()
    conn.protocol.force_close()
    await asyncio.wait_for(cancelled.wait(), 5)
    assert conn.transport.aborted


async def test_websocket_upgrade_without_websocket_support_is_plain_http() -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await hello(scope, receive, send)

    conn = Connection(app, Config(lifespan="off", websocket=False))
    conn.send(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    [response] = await conn.responses()
    assert response.status == 200
    assert scopes[0]["type"] == "http"
    assert await conn.closed()  # the upgrade left the stream in an unknown state


async def test_proxy_headers_from_trusted_peer() -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await hello(scope, receive, send)

    conn = Connection(app, Config(lifespan="off", proxy_headers=True))
    conn.send(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1, 203.0.113.9\r\n"
        b"X-Forwarded-Port: 4444\r\nX-Forwarded-Proto: https\r\n\r\n"
    )
    await conn.responses()
    assert scopes[0]["client"] == ("203.0.113.9", 4444)
    assert scopes[0]["scheme"] == "https"


async def test_proxy_headers_ignored_from_untrusted_peer() -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await hello(scope, receive, send)

    conn = Connection(app, Config(lifespan="off", proxy_headers=True), peer=("198.51.100.7", 1))
    conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n")
    await conn.responses()
    assert scopes[0]["client"] == ("198.51.100.7", 1)
    assert scopes[0]["scheme"] == "http"


async def test_no_server_name() -> None:
    conn = Connection(hello, Config(lifespan="off", server_name=None))
    conn.send(GET)
    [response] = await conn.responses()
    assert response.header(b"server") is None


async def test_app_server_header_wins() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"server", b"mine")]}
        )
        await send({"type": "http.response.body", "body": b""})

    conn = Connection(app, Config(lifespan="off", server_name="custom"))
    conn.send(GET)
    [response] = await conn.responses()
    assert [v for k, v in response.headers if k.lower() == b"server"] == [b"mine"]


async def test_many_pipelined_requests_in_one_read_do_not_recurse() -> None:
    conn = Connection(hello)
    conn.send(GET * 2000)
    responses = await conn.responses(2000, timeout=30)
    assert len(responses) == 2000
    assert all(r.status == 200 for r in responses)


async def test_context_variables_do_not_leak_between_requests() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(var.get())
        var.set(scope["path"])
        await hello(scope, receive, send)

    conn = Connection(app)
    conn.send(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
    await conn.responses(1)
    conn.send(b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    await conn.responses(2)
    assert seen == ["unset", "unset"]
    assert var.get() == "unset"


async def test_app_that_suspends_continues_as_a_task_with_its_context() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var2", default="unset")
    seen: list[object] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        var.set("mine")
        await asyncio.sleep(0.01)
        seen.append(var.get())
        seen.append(asyncio.current_task() is not None)
        async with asyncio.timeout(5):  # needs a real current task
            await asyncio.sleep(0)
        await hello(scope, receive, send)

    conn = Connection(app)
    conn.send(GET)
    [response] = await conn.responses()
    assert response.status == 200
    assert seen == ["mine", True]
    assert var.get() == "unset"


async def test_first_statement_runs_inside_the_request_task() -> None:
    seen: list[object] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(asyncio.current_task())
        async with asyncio.timeout(5):  # "Timeout should be used inside a task" otherwise
            await hello(scope, receive, send)

    conn = Connection(app)
    conn.send(GET)
    [response] = await conn.responses()
    assert response.status == 200
    assert len(seen) == 1 and isinstance(seen[0], asyncio.Task)
    assert seen[0] is not asyncio.current_task()


async def test_cancelling_a_suspended_app_reaches_it() -> None:
    cancelled = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    conn = Connection(app)
    conn.send(GET)
    await conn.settle()
    assert len(conn.state.tasks) == 1
    next(iter(conn.state.tasks)).cancel()
    await asyncio.wait_for(cancelled.wait(), 5)
    await conn.settle()
    assert conn.state.tasks == set()


async def test_date_header_ticks_once_a_second_on_the_loop() -> None:
    # A running server refreshes the Date line from a loop timer; responses read it.
    date = DateHeader()
    loop = asyncio.get_running_loop()
    date.start(loop)
    try:
        assert date.ticking
        first = date.value
        parsed = email.utils.parsedate_to_datetime(first[6:-2].decode())
        assert abs(parsed.timestamp() - time.time()) < 2
        deadline = time.monotonic() + 3
        while date.value == first and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert date.value != first  # the timer moved it on to the next second
        assert date.value == date.line()
    finally:
        date.stop()
    assert not date.ticking
