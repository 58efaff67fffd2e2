"""The chat consumers, tested in-process with ``narrows.testing.WebsocketCommunicator``.

Run with ``python manage.py test chat`` (from examples/chat).
"""

from asgiref.sync import sync_to_async
from chatsite.asgi import application
from django.contrib.auth import get_user_model
from django.test import TransactionTestCase

from chat.models import Message
from narrows.testing import WebsocketCommunicator

# AllowedHostsOriginValidator wants an Origin from ALLOWED_HOSTS, as a browser sends.
ORIGIN = [(b"origin", b"http://localhost")]


def client(path, user=None):
    communicator = WebsocketCommunicator(application, path, headers=ORIGIN)
    if user is not None:
        # A user put in the scope before AuthMiddleware runs is kept, so tests can skip
        # the session cookie.
        communicator.scope["user"] = user
    return communicator


# TransactionTestCase: the consumers use the database from another thread.
class PublicChatTests(TransactionTestCase):
    async def test_messages_reach_everyone_in_the_room_and_are_stored(self):
        alice, bob = client("/ws/chat/lobby/"), client("/ws/chat/lobby/")
        for communicator in (alice, bob):
            connected, _ = await communicator.connect()
            self.assertTrue(connected)
            self.assertEqual(
                await communicator.receive_json_from(), {"type": "history", "messages": []}
            )

        await alice.send_json_to({"message": "hello"})
        for communicator in (alice, bob):
            message = await communicator.receive_json_from()
            self.assertEqual((message["user"], message["text"]), ("anonymous", "hello"))

        self.assertEqual(await Message.objects.filter(room="lobby").acount(), 1)
        await alice.disconnect()
        await bob.disconnect()

    async def test_history_on_join(self):
        await Message.objects.acreate(room="lobby", username="carol", text="earlier")
        communicator = client("/ws/chat/lobby/")
        await communicator.connect()
        history = await communicator.receive_json_from()
        self.assertEqual([m["text"] for m in history["messages"]], ["earlier"])
        await communicator.disconnect()

    async def test_foreign_origin_is_refused(self):
        communicator = WebsocketCommunicator(
            application, "/ws/chat/lobby/", headers=[(b"origin", b"http://evil.example")]
        )
        connected, _ = await communicator.connect()
        self.assertFalse(connected)


class AdminChatTests(TransactionTestCase):
    async def test_staff_only(self):
        create_user = sync_to_async(get_user_model().objects.create_user)  # Django 4.2 too
        user = await create_user("walter", password="x")
        staff = await create_user("sky", password="x", is_staff=True)

        refused = client("/ws/chat/admin/", user)
        await refused.connect()
        self.assertEqual(await refused.receive_output(), {"type": "websocket.close", "code": 4003})

        admitted = client("/ws/chat/admin/", staff)
        connected, _ = await admitted.connect()
        self.assertTrue(connected)
        self.assertEqual((await admitted.receive_json_from())["type"], "history")
        await admitted.disconnect()
