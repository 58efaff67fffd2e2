"""The sans-I/O HTTP connection: inputs in, actions out, fed whole and byte by byte."""

from __future__ import annotations

from typing import Any

import pytest

from narrows.server.http.connection import (
    BODY,
    CLOSE,
    END,
    ERROR,
    HAND_OVER,
    PAUSE,
    RESUME,
    START,
    ConnectionState,
    HTTPConnection,
    InvalidTransition,
)
from narrows.server.http.parser import HEAD_TARGET, RequestHead, RequestParser

GET = b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n"


def feed(conn: HTTPConnection, data: bytes, bytewise: bool) -> list[tuple[int, Any]]:
    if not bytewise:
        return conn.receive_data(data)
    actions: list[tuple[int, Any]] = []
    for i in range(len(data)):
        actions += conn.receive_data(data[i : i + 1])
    return actions


def kinds(actions: list[tuple[int, Any]]) -> list[int]:
    return [kind for kind, _ in actions]


@pytest.mark.parametrize("bytewise", [False, True])
def test_a_request_then_idle_again(bytewise: bool) -> None:
    conn = HTTPConnection(RequestParser())
    actions = feed(conn, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", bytewise)
    assert kinds(actions)[0] == START and kinds(actions)[-1] == END
    assert b"".join(v for k, v in actions if k == BODY) == b"hi"
    assert conn.state is ConnectionState.BUSY
    assert conn.response_complete(keep_alive=True) == []
    assert conn.state is ConnectionState.IDLE


@pytest.mark.parametrize("bytewise", [False, True])
def test_pipelined_requests_wait_their_turn_with_reading_paused(bytewise: bool) -> None:
    conn = HTTPConnection(RequestParser())
    actions = feed(conn, GET % 1 + GET % 2 + GET % 3, bytewise)
    starts = [v[HEAD_TARGET] for k, v in actions if k == START]
    assert starts == [b"/1"]
    assert (PAUSE, None) in actions and not conn.reading
    for expected in (b"/2", b"/3"):
        actions = conn.response_complete(keep_alive=True)
        assert [v[HEAD_TARGET] for k, v in actions if k == START] == [expected]
    assert (RESUME, None) in actions or conn.reading
    assert conn.response_complete(keep_alive=True) == [] or conn.state is ConnectionState.IDLE


def test_no_waiting_request_starts_while_writing_is_paused() -> None:
    conn = HTTPConnection(RequestParser())
    conn.receive_data(GET % 1 + GET % 2)
    assert kinds(conn.writing_paused()) == []  # reading is already paused for /2
    assert conn.response_complete(keep_alive=True) == []
    assert conn.state is ConnectionState.STALLED
    actions = conn.writing_resumed()
    assert [v[HEAD_TARGET] for k, v in actions if k == START] == [b"/2"]
    assert conn.state is ConnectionState.BUSY


def test_a_read_of_many_pipelined_requests_is_parsed_a_slice_at_a_time() -> None:
    parser = RequestParser()
    conn = HTTPConnection(parser)
    conn.receive_data(b"".join(GET % i for i in range(10_000)))
    assert conn.state is ConnectionState.BUSY
    assert len(conn._waiting) < 200  # one 4 KiB slice's worth, not 10,000
    served = 1
    while conn.state is ConnectionState.BUSY:
        served += sum(1 for k, _ in conn.response_complete(keep_alive=True) if k == START)
    assert served == 10_000


def test_an_error_after_a_request_is_answered_in_its_turn() -> None:
    conn = HTTPConnection(RequestParser())
    actions = conn.receive_data(GET % 1 + b"GET / HTTP/1.1\r\n\r\n")
    assert kinds(actions).count(ERROR) == 0
    actions = conn.response_complete(keep_alive=True)
    assert kinds(actions) == [ERROR]
    assert actions[0][1].status == 400
    assert conn.state is ConnectionState.CLOSED


def test_websocket_upgrade_behind_a_request_is_handed_over_after_it() -> None:
    conn = HTTPConnection(RequestParser())
    upgrade = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    conn.receive_data(GET % 1 + upgrade + b"\x81\x00")
    [(kind, (head, trailing))] = conn.response_complete(keep_alive=True)
    assert kind == HAND_OVER and type(head) is tuple and RequestHead._make(head).target == b"/ws"
    assert trailing == b"\x81\x00"
    assert conn.state is ConnectionState.UPGRADED


def test_not_keep_alive_closes_and_an_invalid_input_names_the_state() -> None:
    conn = HTTPConnection(RequestParser())
    conn.receive_data(GET % 1)
    assert conn.response_complete(keep_alive=False) == [(CLOSE, None)]
    with pytest.raises(InvalidTransition, match="'closed'"):
        conn._go(conn_event("REQUEST"))


def conn_event(name: str) -> Any:
    from narrows.server.http.connection import Event

    return Event[name]
