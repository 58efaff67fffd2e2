"""Lifespan: auto/on/off, state shared into request scopes, failed startup exits non-zero."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest

from narrows.server.lifespan import Lifespan, LifespanFailure
from tests.server.http.fakes import parse_responses
from tests.server.http.serving import port_of, request, serving
from tests.server.lifespan_apps import failing_startup, no_lifespan, stateful


async def test_state_is_shared_into_request_scopes() -> None:
    async with serving(stateful, lifespan="on") as server:
        data = await request(
            port_of(server), b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
    assert parse_responses(data)[0].body == b"hello from lifespan"


async def test_startup_failure_raises_with_app_message() -> None:
    lifespan = Lifespan(failing_startup, "auto", {})
    with pytest.raises(LifespanFailure, match="database is unreachable"):
        await lifespan.startup()


async def test_auto_tolerates_apps_without_lifespan(caplog: pytest.LogCaptureFixture) -> None:
    lifespan = Lifespan(no_lifespan, "auto", {})
    with caplog.at_level(logging.DEBUG, logger="narrows"):
        await lifespan.startup()
        await lifespan.shutdown()
    # Normal for an app without lifespan (Django's): DEBUG, not an INFO line on every start.
    levels = [r.levelno for r in caplog.records if "unsupported" in r.getMessage()]
    assert levels == [logging.DEBUG]


async def test_on_requires_lifespan_support() -> None:
    lifespan = Lifespan(no_lifespan, "on", {})
    with pytest.raises(LifespanFailure, match="unsupported scope"):
        await lifespan.startup()


async def test_off_never_calls_the_app() -> None:
    calls: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope)

    lifespan = Lifespan(app, "off", {})
    await lifespan.startup()
    await lifespan.shutdown()
    assert calls == []


async def test_shutdown_runs() -> None:
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            events.append(message["type"])
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return

    lifespan = Lifespan(app, "on", {})
    await lifespan.startup()
    await lifespan.shutdown()
    assert events == ["lifespan.startup", "lifespan.shutdown"]


async def test_wrong_message_is_named() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start"})

    lifespan = Lifespan(app, "on", {})
    with pytest.raises(LifespanFailure, match=r"lifespan\.startup\.complete"):
        await lifespan.startup()


def test_failed_startup_exits_non_zero_with_message() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "narrows", "-p", "0", "tests.server.lifespan_apps:failing_startup"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "database is unreachable" in proc.stderr
    assert "Listening" not in proc.stderr


def test_lifespan_off_flag_skips_startup() -> None:
    from tests.helpers import free_port, narrows_process

    port = free_port()
    args = ["--lifespan", "off", "-p", str(port), "tests.server.lifespan_apps:failing_startup"]
    with narrows_process(args, port=port) as proc:
        assert proc.poll() is None
