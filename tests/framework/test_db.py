"""narrows.db against the real test database: ORM in threads, connection closing, and
the promise that async consumers do not hop to a thread per message."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

import narrows.db
from narrows.consumer import AsyncConsumer
from narrows.db import aclose_old_connections, database_sync_to_async
from narrows.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from narrows.testing import WebsocketCommunicator


@pytest.fixture
def close_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Observe (and still perform) Django's close_old_connections calls made by narrows.db."""
    calls: list[str] = []
    real = narrows.db._django_close_old_connections

    def spy() -> None:
        calls.append(threading.current_thread().name)
        real()

    monkeypatch.setattr(narrows.db, "_django_close_old_connections", spy)
    yield calls


@pytest.mark.django_db(transaction=True)
async def test_database_sync_to_async_uses_the_orm_in_a_thread(close_calls: list[str]) -> None:
    loop_thread = threading.current_thread().name

    @database_sync_to_async
    def create(name: str) -> tuple[int, str]:
        user = User.objects.create_user(name, password="pw")
        return user.pk, threading.current_thread().name

    pk, thread = await create("alice")
    assert thread != loop_thread
    assert await database_sync_to_async(lambda: User.objects.get(pk=pk).username)() == "alice"
    # Closed before and after each call, in the worker thread where the DB was used.
    assert len(close_calls) == 4
    assert loop_thread not in close_calls


@pytest.mark.django_db(transaction=True)
async def test_database_sync_to_async_propagates_exceptions(close_calls: list[str]) -> None:
    @database_sync_to_async
    def missing() -> User:
        return User.objects.get(username="nobody")

    with pytest.raises(User.DoesNotExist):
        await missing()
    assert len(close_calls) == 2  # closed after the failure too


@pytest.mark.django_db(transaction=True)
async def test_aclose_old_connections_hops_once(close_calls: list[str]) -> None:
    await aclose_old_connections()
    assert len(close_calls) == 1
    assert close_calls[0] != threading.current_thread().name


@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
async def test_aclose_old_connections_skipped_without_databases(
    close_calls: list[str], settings: Any
) -> None:
    settings.DATABASES = {}
    await aclose_old_connections()
    assert close_calls == []


class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data)


async def _run_echo_connection(messages: int) -> None:
    """A whole connection driven without the communicator (which turns closing off)."""
    import asyncio

    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})
    for i in range(messages):
        await inbox.put({"type": "websocket.receive", "text": str(i)})
    await inbox.put({"type": "websocket.disconnect", "code": 1000})
    await Echo.as_asgi()({"type": "websocket", "path": "/"}, inbox.get, outbox.put)
    assert outbox.qsize() == messages + 1  # accept + one echo per message


@pytest.mark.django_db(transaction=True)
async def test_async_consumer_closes_connections_at_start_and_end_only(
    close_calls: list[str],
) -> None:
    await _run_echo_connection(messages=50)
    assert len(close_calls) == 2  # Channels 4.2+ would hop 52 times here


@pytest.mark.django_db(transaction=True)
async def test_sync_consumer_closes_around_each_handler(close_calls: list[str]) -> None:
    class SyncEcho(WebsocketConsumer):
        def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            self.send(text_data=text_data)

    import asyncio

    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for message in (
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "x"},
        {"type": "websocket.disconnect", "code": 1000},
    ):
        await inbox.put(message)
    await SyncEcho.as_asgi()({"type": "websocket", "path": "/"}, inbox.get, outbox.put)
    assert len(close_calls) == 6  # before and after each of the three handlers


@pytest.mark.django_db(transaction=True)
async def test_communicators_turn_connection_closing_off(close_calls: list[str]) -> None:
    comm = WebsocketCommunicator(Echo.as_asgi(), "/")
    await comm.connect()
    await comm.send_to(text_data="x")
    assert await comm.receive_from() == "x"
    await comm.disconnect()
    assert close_calls == []
    # ... for the application only: the test's own context is unaffected.
    await aclose_old_connections()
    assert len(close_calls) == 1


class Profile(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        # Django's async ORM, from an async consumer.
        self.user = await User.objects.acreate(username=self.scope["url_route"]["kwargs"]["n"])

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        count = await User.objects.filter(username__startswith="p").acount()
        await self.send(text_data=f"{self.user.username}:{count}")


class SyncProfile(WebsocketConsumer):
    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        User.objects.create_user(f"p-{text_data}")
        self.send(text_data=str(User.objects.filter(username__startswith="p").count()))


@pytest.mark.django_db(transaction=True)
async def test_consumers_use_the_orm_through_the_communicator() -> None:
    scope_kwargs = {"url_route": {"args": (), "kwargs": {"n": "p-async"}}}
    comm = WebsocketCommunicator(Profile.as_asgi(), "/p/")
    comm.scope.update(scope_kwargs)
    assert (await comm.connect())[0]
    sync_comm = WebsocketCommunicator(SyncProfile.as_asgi(), "/s/")
    assert (await sync_comm.connect())[0]
    await sync_comm.send_to(text_data="sync")
    assert await sync_comm.receive_from() == "2"
    await comm.send_to(text_data="count")
    assert await comm.receive_from() == "p-async:2"
    await comm.disconnect()
    await sync_comm.disconnect()
    assert await sync_to_async(User.objects.count)() == 2


@pytest.mark.django_db(transaction=True)
async def test_async_consumer_with_no_handlers_still_closes_on_exit(
    close_calls: list[str],
) -> None:
    from narrows.exceptions import StopConsumer

    class Quits(AsyncConsumer):
        async def test_quit(self, message: dict[str, Any]) -> None:
            raise StopConsumer

    async def receive() -> dict[str, Any]:
        return {"type": "test.quit"}

    async def send(message: Any) -> None:
        pass

    await Quits.as_asgi()({"type": "test"}, receive, send)
    assert len(close_calls) == 2


class Lookup(AsyncWebsocketConsumer):
    @database_sync_to_async
    def usernames(self, prefix: str) -> list[str]:
        return sorted(
            User.objects.filter(username__startswith=prefix).values_list("username", flat=True)
        )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        names = await self.usernames(text_data or "")
        await self.send(text_data=",".join(names))


@pytest.mark.django_db(transaction=True)
async def test_database_sync_to_async_as_a_method_decorator() -> None:
    await database_sync_to_async(User.objects.create_user)("look-a")
    await database_sync_to_async(User.objects.create_user)("look-b")
    comm = WebsocketCommunicator(Lookup.as_asgi(), "/")
    await comm.connect()
    await comm.send_to(text_data="look-")
    assert await comm.receive_from() == "look-a,look-b"
    await comm.disconnect()
    assert Lookup.usernames.__name__ == "usernames"
