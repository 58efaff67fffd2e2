"""ASGI entry point of the deployment tests' project: the seed's ``asgi.py`` with
``channels`` replaced by ``narrows``."""

import os

from django.core.asgi import get_asgi_application
from django.urls import path

# Fetch Django ASGI application early to ensure AppRegistry is populated
# before importing consumers and AuthMiddlewareStack that may import ORM models.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests_app.settings")
django_asgi_app = get_asgi_application()

from tests_app.consumers import ChatConsumer  # noqa: E402

from narrows.auth import AuthMiddlewareStack  # noqa: E402
from narrows.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Django's ASGI application to handle traditional HTTP requests
        "http": django_asgi_app,
        # WebSocket chat handler
        "websocket": AuthMiddlewareStack(URLRouter([path("ws/chat/", ChatConsumer.as_asgi())])),
    }
)
