"""The echo consumer, written once for any ``AsyncWebsocketConsumer`` base class."""

from __future__ import annotations

from typing import Any


def make_echo_consumer(base: type[Any]) -> type[Any]:
    """Subclass ``base`` (Channels' or narrows' AsyncWebsocketConsumer) into an echo."""

    class EchoConsumer(base):  # type: ignore[misc, valid-type]
        async def connect(self) -> None:
            await self.accept()

        async def receive(
            self, text_data: str | None = None, bytes_data: bytes | None = None
        ) -> None:
            if text_data is not None:
                await self.send(text_data=text_data)
            else:
                await self.send(bytes_data=bytes_data)

    return EchoConsumer
