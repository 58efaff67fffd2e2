from django.urls import path, re_path

from chat import views

urlpatterns = [
    path("", views.index, name="index"),
    path("chat/admin/", views.admin_chat, name="admin-chat"),
    re_path(r"^chat/(?P<room>[-a-zA-Z0-9_]{1,50})/$", views.room, name="room"),
]
