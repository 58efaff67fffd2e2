"""Raw-socket clients shared by the reliability tests."""

from __future__ import annotations

import asyncio


async def ws_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` (a handshake and frames); answer the server's close frame with ours, as
    a well-behaved client does; return everything received until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    received = b""
    replied = False
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), timeout):
            received += chunk
            _, _, frames = received.partition(b"\r\n\r\n")
            if not replied and b"\x88" in frames and len(frames) >= frames.index(b"\x88") + 2:
                writer.write(bytes((0x88, 0x82)) + b"\0\0\0\0" + (1000).to_bytes(2, "big"))
                replied = True
    except ConnectionError:
        pass
    finally:
        writer.close()
    return received
