"""The echo project on Channels 4.x.

Served with ``daphne bench.channels_echo.asgi_channels:application`` (or uvicorn).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.channels_echo.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from bench.channels_echo.consumers import make_echo_consumer  # noqa: E402

EchoConsumer = make_echo_consumer(AsyncWebsocketConsumer)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([path("ws/echo/", EchoConsumer.as_asgi())]),
    }
)
