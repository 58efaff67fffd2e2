"""Auth, sessions and origin checks with real consumers and narrows.testing communicators."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.urls import path

from narrows.auth import AuthMiddlewareStack, login, logout
from narrows.db import database_sync_to_async
from narrows.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from narrows.routing import URLRouter
from narrows.security.websocket import AllowedHostsOriginValidator
from narrows.testing import WebsocketCommunicator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(_fast_hashing: None) -> User:
    return User.objects.create_user("alice", password="wonderland")


class AsyncAccount(AsyncWebsocketConsumer):
    """'login NAME', 'logout', 'whoami'; saves the session after each change."""

    async def connect(self) -> None:
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        assert text_data is not None
        if text_data.startswith("login "):
            user = await User.objects.aget(username=text_data[6:])
            await login(self.scope, user)
            await database_sync_to_async(self.scope["session"].save)()
        elif text_data == "logout":
            await logout(self.scope)
            await database_sync_to_async(self.scope["session"].save)()
        user = self.scope["user"]
        key = self.scope["session"].session_key
        await self.send(text_data=f"{user.username if user.is_authenticated else '-'} {key}")


class SyncAccount(WebsocketConsumer):
    """Logs the user named in the query string in before accepting (sync consumer)."""

    def connect(self) -> None:
        username = self.scope["query_string"].decode()
        async_to_sync(login)(self.scope, User.objects.get(username=username))
        self.accept()
        self.send(text_data=self.scope["user"].username)


def application() -> Any:
    return AllowedHostsOriginValidator(
        AuthMiddlewareStack(
            URLRouter(
                [
                    path("ws/async/", AsyncAccount.as_asgi()),
                    path("ws/sync/", SyncAccount.as_asgi()),
                ]
            )
        )
    )


ORIGIN = (b"origin", b"http://testserver")


async def test_login_in_async_consumer_persists_across_communicators(alice: User) -> None:
    communicator = WebsocketCommunicator(application(), "/ws/async/", headers=[ORIGIN])
    assert (await communicator.connect())[0]
    await communicator.send_to(text_data="login alice")
    name, key = str(await communicator.receive_from(5)).split()
    assert name == "alice"
    await communicator.disconnect()

    cookie = (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={key}".encode())
    communicator = WebsocketCommunicator(application(), "/ws/async/", headers=[ORIGIN, cookie])
    assert (await communicator.connect())[0]
    await communicator.send_to(text_data="whoami")
    assert await communicator.receive_from(5) == f"alice {key}"
    await communicator.send_to(text_data="logout")
    name, _ = str(await communicator.receive_from(5)).split()
    assert name == "-"
    await communicator.disconnect()

    communicator = WebsocketCommunicator(application(), "/ws/async/", headers=[ORIGIN, cookie])
    assert (await communicator.connect())[0]
    await communicator.send_to(text_data="whoami")
    assert str(await communicator.receive_from(5)).startswith("- ")
    await communicator.disconnect()


async def test_sync_consumer_login_sends_cookie_with_handshake(alice: User) -> None:
    communicator = WebsocketCommunicator(application(), "/ws/sync/?alice", headers=[ORIGIN])
    await communicator.send_input({"type": "websocket.connect"})
    accept = await communicator.receive_output(5)
    assert accept["type"] == "websocket.accept"
    cookies = b"; ".join(v for n, v in accept.get("headers", []) if n.lower() == b"set-cookie")
    assert f"{django_settings.SESSION_COOKIE_NAME}=".encode() in cookies
    assert b"SameSite=Lax" in cookies
    assert await communicator.receive_from(5) == "alice"
    await communicator.disconnect()


async def test_foreign_origin_is_denied_before_the_consumer_runs() -> None:
    communicator = WebsocketCommunicator(
        application(), "/ws/async/", headers=[(b"origin", b"http://evil.org")]
    )
    connected, code = await communicator.connect()
    assert (connected, code) == (False, 1000)
    await communicator.wait(5)
