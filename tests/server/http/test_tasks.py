"""Every request runs inside a Task with its own context, on uvloop and on asyncio.

Over real sockets, with the server on the loop a user would run it on: an application's
first statement may be ``asyncio.timeout()``, ``asyncio.TaskGroup()`` or anything else that
reads ``asyncio.current_task()``, and context variables set by one pipelined request are
never seen by the next.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvloop

from tests.server.http.fakes import parse_responses
from tests.server.http.serving import port_of, request, serving

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def run_on(loop_name: str, main: Callable[[], Awaitable[Any]]) -> Any:
    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        return runner.run(main())  # type: ignore[arg-type]


async def answer(send: Any, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": body})


def get(path: str, *, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: a\r\n" + extra + b"\r\n"


def serve_and_request(loop_name: str, app: Any, raw: bytes) -> list[Any]:
    async def main() -> bytes:
        async with serving(app) as server:
            return await request(port_of(server), raw)

    return parse_responses(run_on(loop_name, main))


@pytest.fixture(params=sorted(LOOPS))
def loop_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_asyncio_timeout_as_the_first_statement(loop_name: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        async with asyncio.timeout(5):
            await answer(send, b"in time")

    [response] = serve_and_request(loop_name, app, get("/", close=True))
    assert (response.status, response.body) == (200, b"in time")


def test_asyncio_timeout_expires_inside_the_request(loop_name: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(5)
        except TimeoutError:
            await answer(send, b"timed out")

    [response] = serve_and_request(loop_name, app, get("/", close=True))
    assert (response.status, response.body) == (200, b"timed out")


def test_task_group_as_the_first_statement(loop_name: str) -> None:
    async def child() -> bytes:
        await asyncio.sleep(0)
        return b"from a child task"

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async with asyncio.TaskGroup() as group:
            task = group.create_task(child())
        await answer(send, task.result())

    [response] = serve_and_request(loop_name, app, get("/", close=True))
    assert (response.status, response.body) == (200, b"from a child task")


def test_each_request_has_its_own_current_task(loop_name: str) -> None:
    tasks: list[asyncio.Task[Any] | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        tasks.append(asyncio.current_task())  # before anything suspends
        await answer(send, b"ok")
        tasks.append(asyncio.current_task())

    raw = get("/1") + get("/2") + get("/3", close=True)
    responses = serve_and_request(loop_name, app, raw)
    assert [r.status for r in responses] == [200, 200, 200]
    assert len(tasks) == 6
    assert all(task is not None for task in tasks)
    assert tasks[0] is tasks[1] and tasks[2] is tasks[3] and tasks[4] is tasks[5]
    assert len({id(task) for task in tasks[::2]}) == 3


def test_context_variables_kept_apart_between_pipelined_requests(loop_name: str) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("request_var", default="unset")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        before = var.get()
        var.set(scope["path"])
        if scope["path"] == "/slow":
            await asyncio.sleep(0.02)  # the next request is parsed meanwhile
        await answer(send, f"{before} {var.get()}".encode())

    raw = get("/slow") + get("/a") + get("/b", close=True)
    responses = serve_and_request(loop_name, app, raw)
    assert [r.body for r in responses] == [b"unset /slow", b"unset /a", b"unset /b"]
