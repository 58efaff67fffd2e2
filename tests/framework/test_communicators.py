"""The test communicators: scopes they build, what they return, how they report surprises."""

from __future__ import annotations

from typing import Any

import pytest

import narrows.testing
from narrows.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator


def app_sending(*messages: dict[str, Any], record: list[Any] | None = None) -> Any:
    """An ASGI app that records its scope, then sends ``messages`` after the first receive."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if record is not None:
            record.append(scope)
        await receive()
        for message in messages:
            await send(message)
        while True:
            if (await receive())["type"] in {"websocket.disconnect", "http.disconnect"}:
                return

    return app


async def test_websocket_scope() -> None:
    seen: list[Any] = []
    comm = WebsocketCommunicator(
        app_sending({"type": "websocket.accept"}, record=seen),
        "/chat/caf%C3%A9/?q=1&r=2",
        headers=[(b"origin", b"http://testserver")],
        subprotocols=["graphql-ws"],
        spec_version="2.3",
    )
    assert await comm.connect() == (True, None)
    scope = seen[0]
    assert scope["type"] == "websocket"
    assert scope["path"] == "/chat/café/"
    assert scope["raw_path"] == b"/chat/caf%C3%A9/"
    assert scope["query_string"] == b"q=1&r=2"
    assert scope["headers"] == [(b"origin", b"http://testserver")]
    assert scope["subprotocols"] == ["graphql-ws"]
    assert scope["spec_version"] == "2.3"
    assert scope["asgi"]["version"] == "3.0"
    await comm.disconnect()


def test_websocket_path_must_be_str() -> None:
    with pytest.raises(TypeError, match="Expected str, got bytes"):
        WebsocketCommunicator(app_sending(), b"/x")  # type: ignore[arg-type]


async def test_connect_reports_subprotocol_and_rejection_code() -> None:
    comm = WebsocketCommunicator(
        app_sending({"type": "websocket.accept", "subprotocol": "v2"}), "/"
    )
    assert await comm.connect() == (True, "v2")
    await comm.disconnect()
    rejected = WebsocketCommunicator(app_sending({"type": "websocket.close", "code": 4003}), "/")
    assert await rejected.connect() == (False, 4003)
    default_code = WebsocketCommunicator(app_sending({"type": "websocket.close"}), "/")
    assert await default_code.connect() == (False, 1000)


async def test_connect_with_denial_response() -> None:
    comm = WebsocketCommunicator(
        app_sending(
            {"type": "websocket.http.response.start", "status": 403, "headers": [(b"a", b"b")]},
            {"type": "websocket.http.response.body", "body": b"no", "more_body": True},
            {"type": "websocket.http.response.body", "body": b"pe"},
        ),
        "/",
    )
    assert await comm.connect() == (False, 403)
    assert comm.response == {"status": 403, "headers": [(b"a", b"b")], "body": b"nope"}


async def test_connect_with_unexpected_message_names_both() -> None:
    comm = WebsocketCommunicator(app_sending({"type": "websocket.send", "text": "early"}), "/")
    with pytest.raises(AssertionError) as info:
        await comm.connect()
    assert str(info.value).startswith(
        "Expected type 'websocket.accept' or 'websocket.close' or "
        "'websocket.http.response.start', but was 'websocket.send'"
    )
    assert "'text': 'early'" in info.value.__notes__[0]  # the whole message, as a note


async def test_receive_from_when_the_app_closed_instead() -> None:
    comm = WebsocketCommunicator(
        app_sending({"type": "websocket.accept"}, {"type": "websocket.close", "code": 4000}), "/"
    )
    await comm.connect()
    with pytest.raises(AssertionError) as info:
        await comm.receive_from()
    # Channels' text, exactly; the received message is added as a note.
    assert str(info.value) == "Expected type 'websocket.send', but was 'websocket.close'"
    assert "'code': 4000" in info.value.__notes__[0]


async def test_receive_from_rejects_frames_with_both_or_neither_payload() -> None:
    comm = WebsocketCommunicator(
        app_sending(
            {"type": "websocket.accept"},
            {"type": "websocket.send", "text": "a", "bytes": b"b"},
        ),
        "/",
    )
    await comm.connect()
    with pytest.raises(AssertionError, match="exactly one of 'text' or 'bytes'"):
        await comm.receive_from()


async def test_receive_json_from_a_binary_frame() -> None:
    comm = WebsocketCommunicator(
        app_sending({"type": "websocket.accept"}, {"type": "websocket.send", "bytes": b"{}"}), "/"
    )
    await comm.connect()
    with pytest.raises(AssertionError, match="JSON data is not a text frame"):
        await comm.receive_json_from()


async def test_send_to_argument_checks() -> None:
    comm = WebsocketCommunicator(app_sending({"type": "websocket.accept"}), "/")
    await comm.connect()
    with pytest.raises(ValueError, match="exactly one of text_data or bytes_data"):
        await comm.send_to()
    with pytest.raises(ValueError, match="exactly one of text_data or bytes_data"):
        await comm.send_to(text_data="a", bytes_data=b"b")
    with pytest.raises(TypeError, match="must be a str"):
        await comm.send_to(text_data=b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be bytes"):
        await comm.send_to(bytes_data="x")  # type: ignore[arg-type]
    await comm.send_to(text_data="")  # an empty text frame is a valid frame
    await comm.disconnect()


async def test_receive_output_timeout_and_receive_nothing() -> None:
    comm = WebsocketCommunicator(app_sending({"type": "websocket.accept"}), "/")
    await comm.connect()
    assert await comm.receive_nothing(timeout=0.05) is True
    with pytest.raises(TimeoutError):
        await comm.receive_from(timeout=0.05)


async def test_http_communicator_scope_and_response() -> None:
    seen: list[Any] = []
    comm = HttpCommunicator(
        app_sending(
            {"type": "http.response.start", "status": 404, "headers": [(b"x", b"y")]},
            {"type": "http.response.body", "body": b"not ", "more_body": True},
            {"type": "http.response.body", "body": b"found"},
            record=seen,
        ),
        "get",
        "/a%20b?x=1",
        body=b"payload",
        headers=[(b"host", b"testserver")],
    )
    response = await comm.get_response()
    assert response == {"status": 404, "headers": [(b"x", b"y")], "body": b"not found"}
    scope = seen[0]
    assert (scope["type"], scope["method"], scope["path"]) == ("http", "GET", "/a b")
    assert scope["query_string"] == b"x=1"
    assert scope["headers"] == [(b"host", b"testserver")]


def test_http_communicator_body_must_be_bytes() -> None:
    with pytest.raises(TypeError, match="body must be bytes, got str"):
        HttpCommunicator(app_sending(), "GET", "/", body="x")  # type: ignore[arg-type]


async def test_http_communicator_unexpected_message() -> None:
    comm = HttpCommunicator(app_sending({"type": "http.response.body", "body": b"x"}), "GET", "/")
    expected = r"Expected type 'http.response.start', but was 'http.response.body'"
    with pytest.raises(AssertionError, match=expected):
        await comm.get_response()


async def test_application_communicator_raises_app_errors() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise KeyError("inside the app")

    comm = ApplicationCommunicator(broken, {"type": "test"})
    await comm.send_input({"type": "go"})
    with pytest.raises(KeyError, match="inside the app"):
        await comm.receive_output()


def test_live_server_test_case_is_exported_lazily() -> None:
    assert "ChannelsLiveServerTestCase" in narrows.testing.__all__
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        narrows.testing.Nope  # noqa: B018
