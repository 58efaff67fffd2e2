"""The chat consumer of the deployment tests' project (the seed's ``chat.consumers``).

Every message names the process that delivered it, so tests can tell processes apart.
"""

import os
from typing import Any

from narrows.generic.websocket import AsyncWebsocketConsumer

GROUP = "chat"


class ChatConsumer(AsyncWebsocketConsumer):
    groups = [GROUP]

    async def connect(self) -> None:
        await self.accept()
        client = self.scope["client"][0] if self.scope.get("client") else None
        await self.send(text_data=f"hello pid={os.getpid()} client={client}")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.channel_layer.group_send(GROUP, {"type": "chat.message", "text": text_data})

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=f"{event['text']} via={os.getpid()}")
