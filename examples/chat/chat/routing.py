from django.urls import path, re_path

from chat import consumers

websocket_urlpatterns = [
    # Before the public rooms: "admin" would also match <room>.
    path("ws/chat/admin/", consumers.AdminChatConsumer.as_asgi()),
    re_path(r"^ws/chat/(?P<room>[-a-zA-Z0-9_]{1,50})/$", consumers.PublicChatConsumer.as_asgi()),
]
