"""Helpers shared by the test suite: free ports, waiting for servers, required binaries."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_binary(name: str, *candidates: str) -> str:
    """Path of an external program the test needs (redis-server, nginx, chromium...).

    Locally a missing program skips the test with the reason; in CI it fails, because
    CI installs everything and a silent skip would hide a missing install step.
    """
    for candidate in (name, *candidates):
        found = shutil.which(candidate) or (candidate if os.access(candidate, os.X_OK) else None)
        if found:
            return found
    message = f"{name} is not installed (apt-get install it; .ci/run does)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def default_sigint() -> None:
    """``preexec_fn`` for children that tests send SIGINT (Ctrl+C) to: a suite started with
    SIGINT ignored (``cmd &`` in a script, some CI runners) passes the ignore on to every
    child, which would then never see the signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from exc
            time.sleep(0.05)


def accepted_connection(
    port: int, timeout: float, path: str = "/", host: str = "127.0.0.1"
) -> http.client.HTTPConnection:
    """A keep-alive connection the server has accepted: it has answered ``path`` with 200.

    A connection still in the listening socket's backlog when a server stops listening
    is reset, as under any server; one it holds is drained.
    """
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
    return conn


def wait_for_unix_socket(path: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(path)
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {path} after {timeout}s") from exc
            time.sleep(0.05)


@contextmanager
def narrows_process(
    args: Sequence[str],
    *,
    port: int | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python -m narrows ARGS`` as a real child process; wait for ``port`` if given.

    The process is terminated (then killed) on exit; its output is printed when the test
    fails so the reason is visible.
    """
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "narrows", *args],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=default_sigint,
    )
    try:
        if port is not None:
            try:
                wait_for_port(port)
            except TimeoutError:
                proc.kill()
                out = proc.communicate()[0].decode(errors="replace")
                raise RuntimeError(f"narrows did not start:\n{out}") from None
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
