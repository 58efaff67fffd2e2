"""scripts/demo with REDIS_URL: the Redis channel layer and several server processes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

from tests.django.chat_client import ChatUser, receive_json
from tests.django.procs import Process
from tests.helpers import ROOT, free_port, require_binary

ACCEPTING = re.compile(r"Worker process \[(\d+)\] is accepting connections")


def accepting_workers(demo: Process, count: int, timeout: float = 60) -> set[str]:
    """PIDs of the worker processes that say they accept connections (waits for count)."""
    deadline = time.monotonic() + timeout
    while len(pids := set(ACCEPTING.findall(demo.output()))) < count:
        assert time.monotonic() < deadline, demo.output()
        time.sleep(0.1)
    return pids


def test_demo_with_redis_and_several_workers(tmp_path: Path) -> None:
    redis_server = require_binary("redis-server")
    redis_port = free_port()
    redis = subprocess.Popen(
        [redis_server, "--port", str(redis_port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        port = free_port()
        env = {
            "PORT": str(port),
            "WORKERS": "3",
            "CHAT_DB": str(tmp_path / "demo.sqlite3"),
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        }
        with Process([str(ROOT / "scripts" / "demo")], cwd=ROOT, env=env) as demo:
            demo.wait_for_port(port, timeout=90)
            assert "Redis at redis://127.0.0.1" in demo.output()
            workers = accepting_workers(demo, 3)
            assert all(Path(f"/proc/{pid}").exists() for pid in workers), workers
            # Connections land on different worker processes; every one of them must still
            # see every message, through Redis.
            with contextlib.ExitStack() as stack:
                sockets = [
                    stack.enter_context(ChatUser(port).websocket("/ws/chat/redis-room/"))
                    for _ in range(6)
                ]
                for ws in sockets:
                    assert receive_json(ws)["type"] == "history"
                sockets[0].send(json.dumps({"message": "across processes"}))
                for ws in sockets:
                    assert receive_json(ws)["text"] == "across processes"
    finally:
        redis.terminate()
        redis.wait(10)
    assert os.path.exists(tmp_path / "demo.sqlite3")
