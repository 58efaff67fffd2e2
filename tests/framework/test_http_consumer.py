"""AsyncHttpConsumer: body collection, handle/disconnect, streaming and long-poll responses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from narrows.generic.http import AsyncHttpConsumer
from narrows.layers import get_channel_layer
from narrows.testing import HttpCommunicator

EVENTS: list[str] = []


class Echo(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        payload = {
            "method": self.scope["method"],
            "path": self.scope["path"],
            "query": self.scope["query_string"].decode(),
            "body": body.decode(),
        }
        await self.send_response(
            201,
            json.dumps(payload).encode(),
            headers=[(b"Content-Type", b"application/json")],
        )

    async def disconnect(self) -> None:
        EVENTS.append("disconnect")


async def test_send_response_with_body_and_headers() -> None:
    EVENTS.clear()
    comm = HttpCommunicator(Echo.as_asgi(), "post", "/echo/?a=1", body=b"hello")
    response = await comm.get_response()
    assert response["status"] == 201
    assert response["headers"] == [(b"Content-Type", b"application/json")]
    assert json.loads(response["body"]) == {
        "method": "POST",
        "path": "/echo/",
        "query": "a=1",
        "body": "hello",
    }
    await comm.wait()
    assert EVENTS == ["disconnect"]


async def test_body_in_chunks_is_joined() -> None:
    comm = HttpCommunicator(Echo.as_asgi(), "POST", "/")
    comm.sent_request = True
    await comm.send_input({"type": "http.request", "body": b"ab", "more_body": True})
    await comm.send_input({"type": "http.request", "body": b"cd", "more_body": True})
    await comm.send_input({"type": "http.request", "body": b"e"})
    response = await comm.get_response()
    assert json.loads(response["body"])["body"] == "abcde"


async def test_headers_as_dict_and_streamed_body() -> None:
    class Stream(AsyncHttpConsumer):
        async def handle(self, body: bytes) -> None:
            await self.send_headers(status=200, headers={b"X-A": b"1"})
            await self.send_body(b"one ", more_body=True)
            await self.send_body(b"two")

    response = await HttpCommunicator(Stream.as_asgi(), "GET", "/").get_response()
    assert response == {"status": 200, "headers": [(b"X-A", b"1")], "body": b"one two"}


async def test_handle_not_implemented() -> None:
    comm = HttpCommunicator(AsyncHttpConsumer.as_asgi(), "GET", "/")
    await comm.send_input({"type": "http.request", "body": b""})
    with pytest.raises(NotImplementedError, match="must provide a handle"):
        await comm.wait()


async def test_body_before_headers_is_a_clear_error() -> None:
    class Wrong(AsyncHttpConsumer):
        async def handle(self, body: bytes) -> None:
            await self.send_body(b"x")

    comm = HttpCommunicator(Wrong.as_asgi(), "GET", "/")
    await comm.send_input({"type": "http.request", "body": b""})
    with pytest.raises(RuntimeError, match=r"expected send_headers\(\) before send_body\(\)"):
        await comm.wait()


async def test_body_must_be_bytes() -> None:
    class Wrong(AsyncHttpConsumer):
        async def handle(self, body: bytes) -> None:
            await self.send_headers()
            await self.send_body("text")  # type: ignore[arg-type]

    comm = HttpCommunicator(Wrong.as_asgi(), "GET", "/")
    await comm.send_input({"type": "http.request", "body": b""})
    with pytest.raises(TypeError, match="expected body to be bytes, got str"):
        await comm.wait()


async def test_client_disconnect_calls_disconnect() -> None:
    EVENTS.clear()
    comm = HttpCommunicator(Echo.as_asgi(), "POST", "/")
    await comm.send_input({"type": "http.request", "body": b"partial", "more_body": True})
    await comm.send_input({"type": "http.disconnect"})
    await comm.wait()
    assert EVENTS == ["disconnect"]


class LongPoll(AsyncHttpConsumer):
    """The long-poll pattern from Channels' docs: answer later, from a layer message."""

    async def handle(self, body: bytes) -> None:
        await self.send_headers(headers=[(b"Content-Type", b"application/json")])
        await self.send_body(b"", more_body=True)
        await self.send_body(self.channel_name.encode(), more_body=True)

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_body(json.dumps(event).encode())

    async def disconnect(self) -> None:
        EVENTS.append("longpoll disconnect")


async def test_long_poll_response_finished_by_a_channel_layer_message() -> None:
    EVENTS.clear()
    comm = HttpCommunicator(LongPoll.as_asgi(), "GET", "/poll/")
    await comm.send_input({"type": "http.request", "body": b""})
    start = await comm.receive_output()
    assert start["type"] == "http.response.start"
    assert (await comm.receive_output())["body"] == b""
    channel_name = (await comm.receive_output())["body"].decode()
    assert not comm.future.done()  # still running: the response is open
    layer = get_channel_layer()
    assert layer is not None
    await layer.send(channel_name, {"type": "chat.message", "text": "late"})
    last = await comm.receive_output()
    assert json.loads(last["body"]) == {"type": "chat.message", "text": "late"}
    assert last["more_body"] is False
    await comm.wait()  # the final chunk ended the consumer
    assert EVENTS == ["longpoll disconnect"]


async def test_long_poll_client_leaving_calls_disconnect() -> None:
    EVENTS.clear()
    comm = HttpCommunicator(LongPoll.as_asgi(), "GET", "/poll/")
    await comm.send_input({"type": "http.request", "body": b""})
    for _ in range(3):
        await comm.receive_output()
    await comm.send_input({"type": "http.disconnect"})
    await comm.wait()
    assert EVENTS == ["longpoll disconnect"]


async def test_nothing_after_the_final_chunk() -> None:
    class Twice(AsyncHttpConsumer):
        async def handle(self, body: bytes) -> None:
            await self.send_response(200, b"a")
            await self.send_body(b"b")

    comm = HttpCommunicator(Twice.as_asgi(), "GET", "/")
    await comm.send_input({"type": "http.request", "body": b""})
    with pytest.raises(RuntimeError, match="nothing after the final chunk"):
        await comm.wait()
