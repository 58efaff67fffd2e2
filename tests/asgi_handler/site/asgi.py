"""The site under narrows: Django views over HTTP, an echo consumer over WebSocket."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.asgi_handler.site.settings")

from narrows.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from django.urls import path  # noqa: E402

from narrows.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from narrows.routing import ProtocolTypeRouter, URLRouter  # noqa: E402


class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)


application = ProtocolTypeRouter(
    {"http": django_asgi_app, "websocket": URLRouter([path("echo/", Echo.as_asgi())])}
)
