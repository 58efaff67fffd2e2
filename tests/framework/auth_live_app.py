"""The application the live-server cases serve: Django views over HTTP, and an
authenticated, origin-checked WebSocket consumer, routed the Channels way."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import login as django_login
from django.contrib.auth.models import User
from django.core.asgi import get_asgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import path

from narrows.auth import AuthMiddlewareStack
from narrows.generic.websocket import AsyncWebsocketConsumer
from narrows.routing import ProtocolTypeRouter, URLRouter
from narrows.security.websocket import AllowedHostsOriginValidator


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello from the live server")


def user_count(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(User.objects.count()))


def setting_view(request: HttpRequest) -> HttpResponse:
    from django.conf import settings

    return HttpResponse(getattr(settings, "NARROWS_LIVE_MARK", "unset"))


def login_view(request: HttpRequest, username: str) -> HttpResponse:
    django_login(request, User.objects.get(username=username))
    return HttpResponse("logged in")


urlpatterns = [
    path("", hello),
    path("count/", user_count),
    path("setting/", setting_view),
    path("login/<str:username>/", login_view),
]


class WhoAmI(AsyncWebsocketConsumer):
    """Sends the connection's user name (or "anonymous") on connect."""

    async def connect(self) -> None:
        await self.accept()
        user: Any = self.scope["user"]
        await self.send(text_data=user.username if user.is_authenticated else "anonymous")


application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([path("ws/whoami/", WhoAmI.as_asgi())]))
        ),
    }
)
