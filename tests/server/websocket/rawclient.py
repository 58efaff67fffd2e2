"""A raw-socket WebSocket client for frame-level tests: exact bytes out, frames parsed in.

Written by hand on purpose: client libraries refuse to send the malformed frames these
tests need (unmasked frames, reserved bits, bad UTF-8...).
"""

from __future__ import annotations

import asyncio
import base64
import os
from dataclasses import dataclass

from narrows.server.websocket.frames import apply_mask, serialize_masked

TIMEOUT = 10.0


@dataclass
class Frame:
    fin: bool
    rsv1: bool
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        return int.from_bytes(self.payload[:2], "big") if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode()


def handshake_request(
    path: str = "/", extra: list[tuple[str, str]] | None = None, *, key: str | None = None
) -> bytes:
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    lines += [f"{name}: {value}" for name, value in extra or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.status: int | None = None
        self.head: bytes = b""

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    @classmethod
    async def open(
        cls, port: int, path: str = "/", extra: list[tuple[str, str]] | None = None
    ) -> RawClient:
        client = await cls.connect(port)
        client.send(handshake_request(path, extra))
        await client.read_head()
        if client.status != 101:
            raise AssertionError(f"expected 101, got {client.head!r}")
        return client

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def send_frame(
        self, opcode: int, payload: bytes = b"", *, fin: bool = True, rsv1: bool = False
    ) -> None:
        self.writer.write(self.masked(opcode, payload, fin=fin, rsv1=rsv1))

    @staticmethod
    def masked(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv1: bool = False) -> bytes:
        """One client frame with a random mask, as the client would send it."""
        return serialize_masked(opcode, payload, os.urandom(4), fin=fin, rsv1=rsv1)

    async def read_head(self) -> bytes:
        self.head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        self.status = int(self.head.split(b" ", 2)[1])
        return self.head

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode()
        return None

    async def read_body(self) -> bytes:
        length = int(self.header("content-length") or 0)
        return await asyncio.wait_for(self.reader.readexactly(length), TIMEOUT)

    async def read_frame(self) -> Frame:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), TIMEOUT)
        if second & 0x80:
            raise AssertionError("expected an unmasked frame from the server")
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(await self.reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await self.reader.readexactly(8), "big")
        payload = await asyncio.wait_for(self.reader.readexactly(length), TIMEOUT)
        return Frame(bool(first & 0x80), bool(first & 0x40), first & 0x0F, payload)

    async def read_until_close(self) -> Frame:
        """Read frames until the server's close frame, skipping pings and data."""
        while True:
            frame = await self.read_frame()
            if frame.opcode == 0x8:
                return frame

    async def expect_eof(self) -> None:
        """The server closed TCP: nothing more arrives."""
        rest = await asyncio.wait_for(self.reader.read(), TIMEOUT)
        assert rest == b"", f"expected EOF, got {rest!r}"

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def unmask(payload: bytes, mask: bytes) -> bytes:
    return apply_mask(payload, mask)
