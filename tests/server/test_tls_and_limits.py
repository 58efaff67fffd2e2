"""TLS endpoints, --max-requests, and timeouts/limits over real sockets."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import ROOT, free_port, narrows_process
from tests.server.asgi_hello import app as hello_app
from tests.server.http.fakes import parse_responses
from tests.server.http.serving import port_of, serving


@pytest.fixture(scope="module")
def certificate() -> Iterator[tuple[str, str]]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                key,
                "-out",
                cert,
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
            ],
            check=True,
            capture_output=True,
        )
        yield cert, key


def _tls_get(port: int, cert: str) -> bytes:
    context = ssl.create_default_context(cafile=cert)
    context.check_hostname = False
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


async def test_tls_with_ssl_flags(certificate: tuple[str, str]) -> None:
    cert, key = certificate
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await hello_app(scope, receive, send)

    async with serving(app, ssl_certfile=cert, ssl_keyfile=key) as server:
        assert server.bound[0].url.startswith("https://127.0.0.1:")
        data = await asyncio.to_thread(_tls_get, port_of(server), cert)
    assert parse_responses(data)[0].body == b"Hello, world!"
    assert scopes[0]["scheme"] == "https"


def test_tls_daphne_ssl_endpoint(certificate: tuple[str, str]) -> None:
    cert, key = certificate
    port = free_port()
    endpoint = f"ssl:port={port}:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    with narrows_process(["-e", endpoint, "tests.server.asgi_hello:app"], port=port, cwd=ROOT):
        assert _tls_get(port, cert).endswith(b"Hello, world!")


def test_bad_certificate_is_a_clear_error(tmp_path: Any) -> None:
    from narrows.server.tls import create_ssl_context

    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(ValueError, match="Cannot load TLS certificate"):
        create_ssl_context(str(bogus))


def test_max_requests_stops_the_process() -> None:
    port = free_port()
    args = ["--max-requests", "3", "-p", str(port), "tests.server.asgi_hello:app"]
    with narrows_process(args, port=port) as proc:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                while sock.recv(65536):
                    pass
        assert proc.wait(20) == 0
        out = proc.stdout.read().decode() if proc.stdout else ""
    assert "--max-requests 3" in out


async def test_slowloris_is_disconnected_by_header_timeout() -> None:
    def slow_client(port: int) -> tuple[bytes, float]:
        started = time.monotonic()
        data = b""
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
            sock.settimeout(0.1)
            while time.monotonic() - started < 5:
                try:
                    sock.sendall(b"X")  # one header byte every 0.1 s: never completes
                except OSError:
                    pass
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
        return data, time.monotonic() - started

    async with serving(hello_app, header_timeout=0.3) as server:
        data, elapsed = await asyncio.to_thread(slow_client, port_of(server))
    assert elapsed < 3
    assert parse_responses(data)[0].status == 408


async def test_idle_connection_closed_by_keep_alive_timeout() -> None:
    async with serving(hello_app, keep_alive_timeout=0.3) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        started = time.monotonic()
        data = await asyncio.wait_for(reader.read(), 5)  # returns at EOF
        writer.close()
    assert parse_responses(data)[0].status == 200
    assert 0.2 < time.monotonic() - started < 3


async def test_silent_connection_closed_by_keep_alive_timeout() -> None:
    async with serving(hello_app, keep_alive_timeout=0.3) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


async def test_limit_concurrency_over_tcp() -> None:
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await hello_app(scope, receive, send)

    async with serving(app, limit_concurrency=1) as server:
        port = port_of(server)
        first_reader, first_writer = await asyncio.open_connection("127.0.0.1", port)
        first_writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        await asyncio.sleep(0.2)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        second = await asyncio.wait_for(reader.read(), 5)
        release.set()
        first = await asyncio.wait_for(first_reader.read(), 5)
        writer.close()
        first_writer.close()
    assert parse_responses(second)[0].status == 503
    assert parse_responses(first)[0].status == 200


def test_bad_certificate_exits_1_with_message(tmp_path: Any) -> None:
    import sys

    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "narrows",
            "-p",
            str(free_port()),
            "--ssl-certfile",
            str(bogus),
            "tests.server.asgi_hello:app",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 1
    assert "Cannot load TLS certificate" in proc.stderr
    assert "Traceback" not in proc.stderr
