"""The seed's two consumers: public chat rooms for anyone, and a staff-only admin chat.

Each message a client sends (``{"message": "..."}``) is stored in the database and
broadcast to the room's group through the channel layer; every member (in this process or,
with Redis, in any process) receives ``{"type": "message", ...}``. On joining, a client gets
``{"type": "history", "messages": [...]}`` with the room's recent messages.
"""

from __future__ import annotations

from typing import Any

from chat.models import ADMIN_ROOM, Message
from narrows.db import database_sync_to_async
from narrows.generic.websocket import AsyncJsonWebsocketConsumer

HISTORY_SIZE = 50
MAX_MESSAGE_LENGTH = 2000
#: Close code sent to users who may not join (4000-4999 are for applications).
CLOSE_FORBIDDEN = 4003


@database_sync_to_async
def recent_messages(room: str) -> list[dict[str, object]]:
    latest = Message.objects.filter(room=room).order_by("-created", "-id")[:HISTORY_SIZE]
    return [message.as_json() for message in reversed(latest)]


@database_sync_to_async
def save_message(room: str, user: Any, text: str) -> dict[str, object]:
    author = user if user is not None and user.is_authenticated else None
    username = author.get_username() if author is not None else "anonymous"
    return Message.objects.create(room=room, user=author, username=username, text=text).as_json()


class PublicChatConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/chat/<room>/``: anyone may join; anonymous users post as "anonymous"."""

    room: str

    def room_name(self) -> str:
        return str(self.scope["url_route"]["kwargs"]["room"])

    async def may_join(self) -> bool:
        return True

    @property
    def group(self) -> str:
        return f"chat.{self.room}"

    async def connect(self) -> None:
        self.room = self.room_name()
        if not await self.may_join():
            # Accept, then close with a code the page can explain (a refused handshake
            # looks to a browser exactly like a server that is down).
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "history", "messages": await recent_messages(self.room)})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "room"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        text = content.get("message") if isinstance(content, dict) else None
        if not isinstance(text, str) or not text.strip():
            await self.send_json(
                {"type": "error", "error": 'expected {"message": "<non-empty text>"}'}
            )
            return
        text = text.strip()[:MAX_MESSAGE_LENGTH]
        message = await save_message(self.room, self.scope.get("user"), text)
        await self.channel_layer.group_send(
            self.group, {"type": "chat.message", "message": message}
        )

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "message", **event["message"]})


class AdminChatConsumer(PublicChatConsumer):
    """``/ws/chat/admin/``: staff only; everyone else is closed with code 4003."""

    def room_name(self) -> str:
        return ADMIN_ROOM

    async def may_join(self) -> bool:
        user = self.scope.get("user")
        return bool(user is not None and user.is_authenticated and user.is_staff)
