"""narrows.asgi under a real narrows process: META, threads, connections, bodies, WebSocket.

The site (tests/asgi_handler/site) runs as ``python -m narrows`` with an SQLite file
database; ``request.META`` is compared with what Django gets from gunicorn for the same
bytes on the wire.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from tests.asgi_handler.site.views import make_notes_table
from tests.helpers import ROOT, free_port, narrows_process, wait_for_port

pytestmark = pytest.mark.timeout(180)

APP = "tests.asgi_handler.site.asgi:application"
THREADS = 2


def http(port: int, raw: bytes, timeout: float = 30) -> bytes:
    """Send one raw request on a new connection; the whole answer (Connection: close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def get(port: int, target: str, headers: str = "") -> tuple[int, bytes]:
    raw = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}Connection: close\r\n\r\n"
    answer = http(port, raw.encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return int(head.split(b" ", 2)[1]), body


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


@pytest.fixture(scope="module")
def site_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    db = tmp_path_factory.mktemp("site") / "site.sqlite3"
    make_notes_table(str(db))
    return {
        "SITE_DB": str(db),
        "DJANGO_SETTINGS_MODULE": "tests.asgi_handler.site.settings",
        "NARROWS_THREADS": str(THREADS),
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture(scope="module")
def server(site_env: dict[str, str]) -> Iterator[int]:
    port = free_port()
    with narrows_process([APP, "-p", str(port)], port=port, cwd=ROOT, env=site_env):
        yield port


@pytest.fixture(scope="module")
def gunicorn(site_env: dict[str, str]) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "2", "-w", "1",
         "-b", f"127.0.0.1:{port}", "tests.asgi_handler.site.wsgi:application"],
        cwd=ROOT, env={**os.environ, **site_env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


# Keys only a particular WSGI server sets, and the one narrows adds (as Django's ASGI
# handler does): REMOTE_HOST, the client address, since no reverse lookup is made.
GUNICORN_ONLY = {"SERVER_SOFTWARE", "RAW_URI", "gunicorn.socket", "wsgi.file_wrapper",
                 "wsgi.input_terminated", "wsgi.early_hints"}  # fmt: skip
NARROWS_ONLY = {"REMOTE_HOST"}
REQUESTS = [
    "GET /meta/?a=1&b=%C3%A9 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n"
    "Accept: */*\r\nCookie: name=caf\xc3\xa9; other=2\r\nReferer: a\r\nReferer: b\r\n"
    "X-Custom_Header: dropped\r\nConnection: close\r\n\r\n",
    "POST /meta/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
    "Content-Length: 5\r\nConnection: close\r\n\r\nhello",
    "GET /meta/%E2%82%AC/x%20y HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
]


@pytest.mark.parametrize("raw", REQUESTS, ids=["get-cookies-headers", "post-body", "utf8-path"])
def test_meta_is_wsgi_meta_key_by_key(server: int, gunicorn: int, raw: str) -> None:
    def meta(port: int) -> dict[str, list[str]]:
        answer = http(port, raw.encode("latin-1"))
        head, _, body = answer.partition(b"\r\n\r\n")
        if b" 404 " in head.split(b"\r\n")[0]:
            pytest.skip("path not routed")
        assert head.startswith(b"HTTP/1.1 200"), answer[:300]
        result: dict[str, list[str]] = json.loads(body)
        return result

    ours, wsgi = meta(server), meta(gunicorn)
    # Two processes: two ports. wsgi.multiprocess is gunicorn's "--workers > 1" (False
    # here); narrows says True, as Django's ASGI handler does, whatever --workers is.
    for key in ("REMOTE_PORT", "SERVER_PORT", "wsgi.multiprocess"):
        assert ours.pop(key)[0] == wsgi.pop(key)[0], key  # the same type
    assert set(ours) - NARROWS_ONLY == set(wsgi) - GUNICORN_ONLY
    for key in set(wsgi) - GUNICORN_ONLY:
        assert ours[key] == wsgi[key], key
    assert ours["REMOTE_HOST"] == ours["REMOTE_ADDR"]


def test_sync_view_on_a_pool_thread_async_view_on_the_loop(server: int) -> None:
    status, body = get(server, "/sleep/?s=0")
    assert status == 200 and body.startswith(b"narrows-django-")
    status, body = get(server, "/async/")
    assert (status, body) == (200, b"async on MainThread")


def test_websocket_answers_while_every_thread_sleeps(server: int) -> None:
    """Twice as many 1 s sync requests as threads: they queue (the pool is bounded) while
    a WebSocket echo on the same worker still answers in milliseconds."""
    durations: list[float] = []

    def slow() -> None:
        started = time.monotonic()
        status, _ = get(server, "/sleep/?s=1")
        assert status == 200
        durations.append(time.monotonic() - started)

    sleepers = [threading.Thread(target=slow) for _ in range(2 * THREADS)]
    for thread in sleepers:
        thread.start()
    time.sleep(0.3)  # every thread is inside time.sleep now

    async def echo_round_trips() -> list[float]:
        async with websockets.connect(f"ws://127.0.0.1:{server}/echo/") as ws:
            times = []
            for n in range(20):
                started = time.perf_counter()
                await ws.send(f"ping {n}")
                assert await ws.recv() == f"ping {n}"
                times.append(time.perf_counter() - started)
            return times

    times = asyncio.run(echo_round_trips())
    for thread in sleepers:
        thread.join()
    # Far below the 1 s a loop blocked by the sleeping views would show (on a shared machine).
    assert sorted(times)[len(times) // 2] < 0.1, times  # median
    assert max(times) < 0.5, times
    # Bounded: THREADS at a time, so the second half waited for the first.
    assert sorted(durations)[-1] > 1.9, durations


def test_connections_live_per_thread(server: int) -> None:
    seen: dict[str, set[int]] = {}
    for _ in range(30):
        status, body = get(server, "/db-thread/")
        assert status == 200
        answer = json.loads(body)
        seen.setdefault(answer["thread"], set()).add(answer["connection"])
    assert 1 <= len(seen) <= THREADS
    # CONN_MAX_AGE=60: each thread kept its one connection for all its requests.
    assert all(len(connections) == 1 for connections in seen.values()), seen


def test_atomic_requests_roll_back_a_failed_view(server: int) -> None:
    _, before = get(server, "/notes/")
    assert get(server, "/write/?fail=1")[0] == 500
    assert get(server, "/notes/")[1] == before
    assert get(server, "/write/")[0] == 200
    assert int(get(server, "/notes/")[1]) == int(before) + 1


def test_upload_streams_into_temporary_files(server: int) -> None:
    payload = os.urandom(3 * 1024 * 1024)  # 3 MiB: far beyond FILE_UPLOAD_MAX_MEMORY_SIZE
    boundary = "narrowsboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nhi\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="f"; filename="x.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /upload/ HTTP/1.1\r\nHost: h\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nConnection: close\r\n\r\n"
    )
    answer = http(server, head.encode() + body)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    result = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert result["fields"] == {"title": "hi"}
    assert result["files"]["f"] == ["TemporaryUploadedFile", len(payload), True]


def test_data_upload_limit_without_content_length(server: int) -> None:
    """A chunked body (no Content-Length) past DATA_UPLOAD_MAX_MEMORY_SIZE: 400."""
    chunk = b"x" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8)) + b"0\r\n\r\n"
    head = (
        b"POST /body-length/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    )
    assert http(server, head + chunks).startswith(b"HTTP/1.1 400")
    small = b"5\r\nhello\r\n0\r\n\r\n"
    assert http(server, head + small).endswith(b"\r\n\r\n5")


def test_streaming_and_file_responses(server: int) -> None:
    assert get(server, "/stream/?n=4") == (200, b"part 0\npart 1\npart 2\npart 3\n")
    status, body = get(server, "/file/")
    views = Path(ROOT / "tests" / "asgi_handler" / "site" / "views.py").read_bytes()
    assert (status, body) == (200, views)


def test_sync_stream_stops_when_the_client_leaves(server: int) -> None:
    """The pool thread stops iterating a sync stream once the client has gone: under
    narrows the bridge reads the request cycle's disconnect flag (no listening Task)."""
    with socket.create_connection(("127.0.0.1", server), timeout=30) as sock:
        sock.sendall(b"GET /endless/ HTTP/1.1\r\nHost: h\r\n\r\n")
        received = 0
        while received < 50_000:
            chunk = sock.recv(65536)
            assert chunk, "the stream ended early"
            received += len(chunk)
    deadline = time.monotonic() + 10
    while True:
        state = json.loads(get(server, "/endless-state/")[1])
        if state["closed"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert state["closed"], state
    assert state["parts"] < 100_000, state  # stopped by the disconnect, not run to its end


def test_threads_flag_reaches_django(site_env: dict[str, str]) -> None:
    """``narrows --threads N`` sizes narrows.asgi's pool without the server importing Django."""
    port = free_port()
    env = {k: v for k, v in site_env.items() if k != "NARROWS_THREADS"}
    with narrows_process([APP, "-p", str(port), "--threads", "3"], port=port, cwd=ROOT, env=env):
        assert get(port, "/pool-size/") == (200, b"3")


def test_root_path_and_force_script_name(site_env: dict[str, str]) -> None:
    """``--root-path`` (a proxy mounting the site under /app) gives SCRIPT_NAME, PATH_INFO
    and request.path as a WSGI server given SCRIPT_NAME=/app does, whether or not the
    server's path includes the prefix."""
    port = free_port()
    with narrows_process(
        [APP, "-p", str(port), "--root-path", "/app"], port=port, cwd=ROOT, env=site_env
    ):
        for target in ("/app/meta/", "/meta/"):
            status, body = get(port, target)
            assert status == 200, body[:300]
            meta = json.loads(body)
            assert meta["SCRIPT_NAME"] == ["str", "'/app'"], target
            assert meta["PATH_INFO"] == ["str", "'/meta/'"], target
            assert meta["(path)"] == ["str", "'/app/meta/'"], target
