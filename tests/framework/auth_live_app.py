"""The application the live-server cases serve: Django views over HTTP, and an
authenticated, origin-checked WebSocket consumer, routed the Channels way."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import login as django_login
from django.contrib.auth.models import User
from django.core.asgi import get_asgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import path

from narrows.auth import AuthMiddlewareStack, login
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


def whoami_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.user.username if request.user.is_authenticated else "anonymous")


urlpatterns = [
    path("", hello),
    path("count/", user_count),
    path("setting/", setting_view),
    path("whoami/", whoami_view),
    path("login/<str:username>/", login_view),
]


class WhoAmI(AsyncWebsocketConsumer):
    """Sends the connection's user name (or "anonymous") on connect."""

    async def connect(self) -> None:
        await self.accept()
        user: Any = self.scope["user"]
        await self.send(text_data=user.username if user.is_authenticated else "anonymous")


class LoginOnConnect(AsyncWebsocketConsumer):
    """Logs the user named in the URL in before accepting: the session and CSRF cookies
    travel with the handshake response."""

    async def connect(self) -> None:
        username = self.scope["url_route"]["kwargs"]["username"]
        await login(self.scope, await User.objects.aget(username=username))
        await self.accept()


websocket_urlpatterns = [
    path("ws/whoami/", WhoAmI.as_asgi()),
    path("ws/login/<str:username>/", LoginOnConnect.as_asgi()),
]

application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
