"""Graceful shutdown on SIGTERM/SIGINT: drain in-flight requests, lifespan shutdown, exit 0."""

from __future__ import annotations

import http.client
import signal
import socket
import threading
import time

import pytest

from tests.helpers import accepted_connection, free_port, narrows_process


def _slow_get(port: int, seconds: float, results: list[object]) -> None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", f"/?seconds={seconds}")
        response = conn.getresponse()
        results.append((response.status, response.read()))
    except Exception as exc:
        results.append(exc)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_in_flight_request_finishes_then_exit_0(sig: signal.Signals) -> None:
    port = free_port()
    args = ["-p", str(port), "tests.server.asgi_hello:slow"]
    with narrows_process(args, port=port) as proc:
        # The request is on its way (in the server's socket) before the signal, whatever
        # the load on the machine; the server must still answer it.
        client = socket.create_connection(("127.0.0.1", port), timeout=30)
        client.sendall(b"GET /?seconds=1.5 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        proc.send_signal(sig)
        deadline = time.monotonic() + 10
        while True:  # soon no longer accepting
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            except OSError:
                break
            assert time.monotonic() < deadline, "still accepting connections after 10s"
            time.sleep(0.05)
        response = http.client.HTTPResponse(client)
        response.begin()
        results = [(response.status, response.read())]
        client.close()
        assert proc.wait(20) == 0
        out = proc.stdout.read().decode() if proc.stdout else ""
    assert results == [(200, b"slow done")]
    assert "Shutting down" in out


def test_graceful_timeout_bounds_the_wait() -> None:
    port = free_port()
    args = ["-p", str(port), "--graceful-timeout", "0.5", "tests.server.asgi_hello:slow"]
    with narrows_process(args, port=port) as proc:
        results: list[object] = []
        thread = threading.Thread(target=_slow_get, args=(port, 30, results))
        thread.start()
        time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert time.monotonic() - started < 10
        thread.join(20)
    assert results and isinstance(results[0], Exception)


def test_second_signal_forces_exit() -> None:
    port = free_port()
    args = ["-p", str(port), "--graceful-timeout", "60", "tests.server.asgi_hello:slow"]
    with narrows_process(args, port=port) as proc:
        # The server has accepted the connection (one answer on it) and the request is
        # sent before the signal: it is in flight, whatever the load on the machine.
        conn = accepted_connection(port, timeout=30, path="/?seconds=0")
        conn.request("GET", "/?seconds=30")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None  # still draining
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert time.monotonic() - started < 10
        with pytest.raises((OSError, http.client.HTTPException)):  # cut short, not answered
            conn.getresponse().read()
        conn.close()
        out = proc.stdout.read().decode() if proc.stdout else ""
    assert "Forcing shutdown" in out


def test_lifespan_shutdown_runs_on_sigterm() -> None:
    port = free_port()
    args = ["-p", str(port), "tests.server.lifespan_apps:stateful"]
    with narrows_process(args, port=port) as proc:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        out = proc.stdout.read().decode() if proc.stdout else ""
    assert "lifespan shutdown ran" in out
