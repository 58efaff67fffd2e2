"""The chat demo (examples/chat) served by the narrows command, driven over real sockets."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from tests.django.chat_client import ChatUser, receive_json
from tests.django.procs import CHAT_DIR, Process, manage, prepare_chat_db, start_chat_server
from tests.helpers import ROOT, free_port


@pytest.fixture(scope="module")
def chat_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("chat") / "chat.sqlite3"
    prepare_chat_db(db)
    return db


@pytest.fixture(scope="module")
def chat_port(chat_db: Path) -> object:
    port = free_port()
    with start_chat_server(port, chat_db):
        yield port


def test_two_users_chat_in_a_room_and_history_is_kept(chat_port: int) -> None:
    alice, anonymous = ChatUser(chat_port), ChatUser(chat_port)
    alice.login("demo", "demo-password")
    with (
        alice.websocket("/ws/chat/history-test/") as a,
        anonymous.websocket("/ws/chat/history-test/") as b,
    ):
        assert receive_json(a) == {"type": "history", "messages": []}
        assert receive_json(b) == {"type": "history", "messages": []}
        a.send(json.dumps({"message": "  hello from alice  "}))
        for ws in (a, b):
            got = receive_json(ws)
            assert (got["type"], got["user"], got["text"]) == (
                "message",
                "demo",
                "hello from alice",
            )
        b.send(json.dumps({"message": "hi, I am anonymous"}))
        for ws in (a, b):
            assert receive_json(ws)["user"] == "anonymous"
    # A newcomer gets the stored history, oldest first.
    with ChatUser(chat_port).websocket("/ws/chat/history-test/") as c:
        history = receive_json(c)
    assert history["type"] == "history"
    assert [(m["user"], m["text"]) for m in history["messages"]] == [
        ("demo", "hello from alice"),
        ("anonymous", "hi, I am anonymous"),
    ]


def test_rooms_are_separate(chat_port: int) -> None:
    user = ChatUser(chat_port)
    with user.websocket("/ws/chat/red/") as red, user.websocket("/ws/chat/blue/") as blue:
        receive_json(red), receive_json(blue)
        red.send(json.dumps({"message": "only red"}))
        assert receive_json(red)["text"] == "only red"
        with pytest.raises(TimeoutError):
            blue.recv(timeout=0.5)


def test_bad_message_gets_an_error_not_a_crash(chat_port: int) -> None:
    with ChatUser(chat_port).websocket("/ws/chat/errors/") as ws:
        receive_json(ws)
        ws.send(json.dumps({"text": "wrong key"}))
        assert receive_json(ws) == {
            "type": "error",
            "error": 'expected {"message": "<non-empty text>"}',
        }


@pytest.mark.parametrize("who", [None, ("demo", "demo-password")])
def test_admin_chat_refuses_non_staff(chat_port: int, who: tuple[str, str] | None) -> None:
    user = ChatUser(chat_port)
    if who:
        user.login(*who)
    with user.websocket("/ws/chat/admin/") as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003


def test_admin_chat_lets_staff_in(chat_port: int) -> None:
    staff = ChatUser(chat_port)
    staff.login("staff", "staff-password")
    with staff.websocket("/ws/chat/admin/") as ws:
        assert receive_json(ws)["type"] == "history"
        ws.send(json.dumps({"message": "staff only"}))
        got = receive_json(ws)
        assert (got["user"], got["room"], got["text"]) == ("staff", "admin", "staff only")
    # The staff room's messages never appear in a public room named like it.
    status, url, _ = ChatUser(chat_port).get("/chat/admin/")
    assert status == 200 and url.endswith("/accounts/login/?next=/chat/admin/")


def test_pages(chat_port: int) -> None:
    user = ChatUser(chat_port)
    status, url, page = user.get("/?room=My+Room")
    assert url.endswith("/chat/my-room/")
    assert 'data-ws-path="/ws/chat/my-room/"' in page
    status, _, script = user.get("/static/chat/chat.js")
    assert status == 200 and "new WebSocket" in script
    _, _, index = user.get("/")
    assert "history-test" in index


def test_scripts_demo_serves_the_chat(chat_db: Path) -> None:
    # chat_db already has the demo users: scripts/demo creating them again must just work.
    port = free_port()
    env = {"PORT": str(port), "CHAT_DB": str(chat_db), "REDIS_URL": ""}
    with Process([str(ROOT / "scripts" / "demo")], cwd=ROOT, env=env) as demo:
        demo.wait_for_port(port, timeout=90)
        out = demo.output()
        assert "demo / demo-password" in out and "staff / staff-password" in out
        assert f"Chat: http://127.0.0.1:{port}/" in out
        assert "Channel layer: in-memory" in out
        user = ChatUser(port)
        user.login("demo", "demo-password")
        with user.websocket("/ws/chat/lobby/") as ws:
            assert receive_json(ws)["type"] == "history"
        assert demo.stop(signal.SIGINT) == 0, demo.output()


def test_demo_own_test_suite_passes() -> None:
    """examples/chat/chat/tests.py (quoted in docs/tutorial.md) runs green."""
    done = manage(CHAT_DIR, "test", "chat", "-v", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Ran 4 tests" in done.stderr and "OK" in done.stderr
