from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify

from chat.models import ADMIN_ROOM, Message


def index(request: HttpRequest) -> HttpResponse:
    """Pick a room: the busiest recent ones, or any new name."""
    name = request.GET.get("room", "").strip()
    if name:
        room = slugify(name)[:50]
        if room and room != ADMIN_ROOM:
            return redirect("room", room=room)
    rooms = (
        Message.objects.exclude(room=ADMIN_ROOM)
        .values("room")
        .annotate(count=Count("id"), last=Max("created"))
        .order_by("-last")[:20]
    )
    return render(request, "chat/index.html", {"rooms": rooms})


def room(request: HttpRequest, room: str) -> HttpResponse:
    if room == ADMIN_ROOM:
        return redirect("admin-chat")
    return render(
        request,
        "chat/room.html",
        {"title": f"#{room}", "room": room, "ws_path": f"/ws/chat/{room}/"},
    )


@login_required
def admin_chat(request: HttpRequest) -> HttpResponse:
    # Any logged-in user gets the page; the WebSocket itself lets only staff in.
    return render(
        request,
        "chat/room.html",
        {"title": "Staff chat", "room": ADMIN_ROOM, "ws_path": "/ws/chat/admin/"},
    )
