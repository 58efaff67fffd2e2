"""The real ``python -m narrows`` command serving WebSocket and HTTP on one port."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import PerMessageDeflate

from tests.helpers import ROOT, free_port, narrows_process
from tests.server.websocket.harness import running
from tests.server.websocket.rawclient import RawClient

APP = "tests.server.websocket.apps:echo"


def http_get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_command_serves_http_and_websocket_on_one_port_and_sigterm_closes_1012() -> None:
    port = free_port()
    with narrows_process([APP, "-p", str(port)], port=port, cwd=ROOT) as proc:
        response = await asyncio.to_thread(http_get, port)
        assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"plain http")
        async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            assert any(isinstance(e, PerMessageDeflate) for e in ws.protocol.extensions)
            await ws.send("over the command line " * 20)
            assert await ws.recv() == "over the command line " * 20
            proc.terminate()
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 20)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1012
        assert await asyncio.to_thread(proc.wait, 20) == 0


async def test_command_line_limits_and_no_compression() -> None:
    port = free_port()
    args = [
        APP,
        "-p",
        str(port),
        "--no-websocket-compression",
        "--websocket_max_message_size",
        "100",
    ]
    with narrows_process(args, port=port, cwd=ROOT):
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            assert ws.protocol.extensions == []
            await ws.send("x" * 100)
            assert await ws.recv() == "x" * 100
            await ws.send("x" * 101)
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 10)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_force_close_after_the_graceful_period() -> None:
    from tests.server.websocket.apps import echo

    async with running(echo, graceful_timeout=0.5) as srv:
        client = await RawClient.open(srv.port)
        stopping = asyncio.create_task(srv.stop())
        close = await client.read_until_close()
        assert close.close_code == 1012
        # The client never answers the close: the server drops it when the period ends
        # (an abort: EOF or a reset both mean the connection is gone).
        try:
            await client.expect_eof()
        except ConnectionResetError:
            pass
        assert await asyncio.wait_for(stopping, 10) == 0
        await client.close()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_each_connection_runs_its_app_in_a_task_of_its_own(loop: str) -> None:
    """``asyncio.timeout`` and ``TaskGroup`` at the app's first statement, over real sockets
    and the real command; a contextvar one connection sets is not seen by the next."""
    port = free_port()
    args = ["tests.server.websocket.apps:task_probe", "-p", str(port), "--loop", loop]
    with narrows_process(args, port=port, cwd=ROOT):
        reports = []
        for _ in range(2):
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                reports.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    for report in reports:
        assert report == {"task": True, "child": "child ran", "inherited": None, "loop": loop}
