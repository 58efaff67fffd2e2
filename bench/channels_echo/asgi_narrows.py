"""The same echo project on narrows: ``narrows bench.channels_echo.asgi_narrows:application``.

Identical to ``asgi_channels`` but for the word ``channels`` -> ``narrows`` in the imports.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.channels_echo.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from django.urls import path  # noqa: E402

from bench.channels_echo.consumers import make_echo_consumer  # noqa: E402
from narrows.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from narrows.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

EchoConsumer = make_echo_consumer(AsyncWebsocketConsumer)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([path("ws/echo/", EchoConsumer.as_asgi())]),
    }
)
