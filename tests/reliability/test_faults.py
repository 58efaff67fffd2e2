"""Faults around the server: failing apps at every phase, vanishing clients, a broken access
log, a SIGKILLed worker, shutdown with work in flight.

In-process servers (real sockets) let every test end by checking that the server's
connection and task counts are back to zero. Redis restarts are covered in tests/layers/.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from narrows.server.config import Config
from narrows.server.server import Server
from narrows.server.state import ServerState
from tests.helpers import ROOT, free_port, narrows_process, wait_for_port
from tests.reliability.clients import ws_exchange
from tests.server.http.serving import port_of, request, serving

APPS = "tests.reliability.fault_apps"


async def settled(state: ServerState | None, timeout: float = 10.0) -> tuple[int, int]:
    assert state is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (state.connections or state.tasks) and loop.time() < deadline:
        await asyncio.sleep(0.02)
    return len(state.connections), len(state.tasks)


class Boom(Exception):
    pass


# -- application exceptions at every phase ------------------------------------------------


def http_app(phase: str) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if phase == "before-start":
            raise Boom(phase)
        if phase == "reading-body":
            await receive()
            raise Boom(phase)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if phase == "after-start":
            raise Boom(phase)
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise Boom(phase)  # "mid-body"

    return app


@pytest.mark.parametrize(
    ("phase", "expect"),
    [
        ("before-start", b"HTTP/1.1 500 "),
        ("reading-body", b"HTTP/1.1 500 "),
        ("after-start", b"HTTP/1.1 500 "),  # the head was held back: still time for a 500
        ("mid-body", b"HTTP/1.1 200 "),  # a truncated chunked body, then the close
    ],
)
async def test_http_app_exception(
    phase: str, expect: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(http_app(phase)) as server:
        port = port_of(server)
        raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        answer = await request(port, raw)  # reads until the server closes
        assert answer.startswith(expect)
        if phase == "mid-body":
            assert b"part" in answer and not answer.endswith(b"0\r\n\r\n")  # never "complete"
        assert await settled(server.state) == (0, 0)
        # The server is unharmed: the next request (which fails the same way) gets the same.
        assert (await request(port, raw)).startswith(expect)
    assert any("Exception in ASGI application" in r.getMessage() for r in caplog.records)


def ws_app(phase: str) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        if phase == "before-accept":
            raise Boom(phase)
        await send({"type": "websocket.accept"})
        if phase == "after-accept":
            raise Boom(phase)
        await receive()
        raise Boom(phase)  # "after-receive"

    return app


def masked_text(text: bytes) -> bytes:
    return bytes((0x81, 0x80 | len(text))) + b"\0\0\0\0" + text


HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + base64.b64encode(b"fault-test-key!!") + b"\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


@pytest.mark.parametrize("phase", ["before-accept", "after-accept", "after-receive"])
async def test_websocket_app_exception(phase: str, caplog: pytest.LogCaptureFixture) -> None:
    async with serving(ws_app(phase)) as server:
        answer = await ws_exchange(port_of(server), HANDSHAKE + masked_text(b"hi"))
        if phase == "before-accept":
            assert answer.startswith(b"HTTP/1.1 500 ")  # the handshake is refused
        else:
            head, _, frames = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 ")
            close = frames[frames.index(b"\x88") :]  # the close frame: 1011 internal error
            assert close[2:4] == (1011).to_bytes(2, "big")
        assert await settled(server.state) == (0, 0)
    assert any("Exception in ASGI application" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("app", "mode", "code"),
    [
        ("raising_startup", "on", 3),  # refuses to serve
        ("raising_shutdown", "on", 1),  # served, then reports the failure
        ("raising_shutdown", "auto", 0),  # logged; exit status unchanged
    ],
)
def test_lifespan_exception(app: str, mode: str, code: int, tmp_path: Path) -> None:
    port = free_port()
    args = [f"{APPS}:{app}", "-p", str(port), "--lifespan", mode]
    proc = subprocess.Popen(
        [sys.executable, "-m", "narrows", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        if code != 3:
            wait_for_port(port)
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert sock.recv(100).startswith(b"HTTP/1.1 200 ")
            proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, out
    assert "lifespan failure in the app" in out
    assert "Traceback" in out  # the app's error is shown, not swallowed


# -- clients that vanish ------------------------------------------------------------------


async def test_client_vanishes_mid_request_body() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "http.disconnect":
                return

    async with serving(app) as server:
        _, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.transport.abort()  # RST: the client is gone mid-body
        assert await settled(server.state) == (0, 0)
    assert seen[0] == "http.request" and seen[-1] == "http.disconnect"


async def test_client_vanishes_mid_response() -> None:
    finished = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(10_000):  # 640 MB if anyone were reading
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
        finally:
            finished.set()

    async with serving(app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.read(10000)
        writer.transport.abort()
        await asyncio.wait_for(finished.wait(), 10)  # send() stops the app, it does not spin
        assert await settled(server.state) == (0, 0)


async def test_websocket_client_vanishes_mid_message() -> None:
    disconnected = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        disconnected.set()

    async with serving(app) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(HANDSHAKE)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(bytes((0x82, 0xFE)) + (60000).to_bytes(2, "big") + b"\0\0\0\0" + b"x" * 100)
        await writer.drain()
        writer.transport.abort()
        await asyncio.wait_for(disconnected.wait(), 10)
        assert await settled(server.state) == (0, 0)


# -- the access log becomes unwritable ----------------------------------------------------


def test_access_log_file_becoming_unwritable(tmp_path: Path) -> None:
    """A log file that hits its size limit (a full disk, a quota) mid-run: the server logs
    the failure once and goes on serving."""
    log = tmp_path / "access.log"
    port = free_port()

    def limit_file_size() -> None:  # Python ignores SIGXFSZ: writes past it fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "narrows",
            f"{APPS}:hello",
            "-p",
            str(port),
            "--access-log",
            str(log),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=limit_file_size,
    )
    try:
        wait_for_port(port)
        for _ in range(60):  # about 60 bytes a line: the limit is crossed half way
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert sock.recv(100).startswith(b"HTTP/1.1 200 ")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert out.count("is not writable") == 1, out
    assert 0 < log.stat().st_size <= 2000


# -- a worker killed under --workers 2 ----------------------------------------------------


def _children(pid: int) -> set[int]:
    """The worker processes of the supervisor ``pid`` (not multiprocessing's tracker)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline:
                found.add(int(entry))
    return found


def _get(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(100).startswith(b"HTTP/1.1 200 ")
    except OSError:
        return False


def test_worker_sigkilled_under_two_workers() -> None:
    port = free_port()
    with narrows_process([f"{APPS}:hello", "-p", str(port), "--workers", "2"], port=port) as proc:
        deadline = time.monotonic() + 20
        while len(workers := _children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        # Served throughout: the other worker shares the socket while the dead one is replaced.
        results = [_get(port) for _ in range(50)]
        assert results.count(False) <= 2  # at most what was in flight on the dead worker
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = _children(proc.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.1)
        assert len(now) == 2 and victim not in now  # replaced
        assert all(_get(port) for _ in range(10))
        assert proc.poll() is None


# -- shutdown drains in-flight work -------------------------------------------------------


async def test_shutdown_drains_in_flight_requests_and_refuses_new_ones() -> None:
    started = asyncio.Event()

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        started.set()
        await asyncio.sleep(1.0)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    server = Server(Config(host="127.0.0.1", port=0, lifespan="off", graceful_timeout=10), slow)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = port_of(server)
    in_flight = [
        asyncio.create_task(
            request(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        )
        for _ in range(5)
    ]
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.sleep(0.1)
    server.handle_exit()  # what SIGTERM does
    await asyncio.sleep(0.2)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)  # no longer accepting
    answers = await asyncio.gather(*in_flight)
    assert all(a.startswith(b"HTTP/1.1 200 ") and a.endswith(b"done") for a in answers)
    assert await asyncio.wait_for(task, 15) == 0
    assert server.state is not None
    assert (len(server.state.connections), len(server.state.tasks)) == (0, 0)


async def test_app_exceptions_do_not_disturb_other_connections() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/boom":
            raise Boom("boom")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    logging.getLogger("narrows.server").setLevel(logging.CRITICAL)
    try:
        async with serving(app) as server:
            port = port_of(server)
            paths = ["/boom" if i % 2 else "/ok" for i in range(200)]
            answers = await asyncio.gather(
                *(
                    request(
                        port, f"GET {p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
                    )
                    for p in paths
                )
            )
            for path, answer in zip(paths, answers, strict=True):
                assert answer.startswith(b"HTTP/1.1 500 " if path == "/boom" else b"HTTP/1.1 200 ")
            assert await settled(server.state) == (0, 0)
    finally:
        logging.getLogger("narrows.server").setLevel(logging.NOTSET)


async def test_shutdown_closes_websockets_with_1012_and_waits_for_them() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    server = Server(Config(host="127.0.0.1", port=0, lifespan="off", graceful_timeout=10), app)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
    writer.write(HANDSHAKE)
    await reader.readuntil(b"\r\n\r\n")
    server.handle_exit()
    head = await asyncio.wait_for(reader.readexactly(2), 5)
    payload = await reader.readexactly(head[1] & 0x7F)
    assert head[0] == 0x88 and payload[:2] == (1012).to_bytes(2, "big")  # service restart
    writer.write(bytes((0x88, 0x82)) + b"\0\0\0\0" + (1012).to_bytes(2, "big"))
    assert await asyncio.wait_for(reader.read(), 5) == b""  # then the server closes
    writer.close()
    assert await asyncio.wait_for(task, 15) == 0
    assert server.state is not None
    assert (len(server.state.connections), len(server.state.tasks)) == (0, 0)
