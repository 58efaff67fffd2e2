"""The chat demo's ASGI application: ``narrows chatsite.asgi:application``.

HTTP goes to Django (pages, login, admin; static files too, see below); WebSocket goes to
the chat consumers, behind the session/auth middleware and the Origin check.
"""

import os

from narrows.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
# Set up Django before importing consumers, which import models.
django_asgi_app = get_asgi_application()

from chat.routing import websocket_urlpatterns  # noqa: E402

from narrows.asgi.staticfiles import ASGIStaticFilesHandler  # noqa: E402
from narrows.auth import AuthMiddlewareStack  # noqa: E402
from narrows.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from narrows.security.websocket import AllowedHostsOriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        # The demo has no separate static file server (nginx, whitenoise), so Django
        # serves /static/ itself. A production site would leave this to nginx.
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
