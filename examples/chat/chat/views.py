from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.utils.timesince import timesince

from chat.models import ADMIN_ROOM, Message


def index(request: HttpRequest) -> HttpResponse:
    """Pick a room: the busiest recent ones, or any new name."""
    name = request.GET.get("room", "").strip()
    error = ""
    if name:
        # Room names become channel-layer group names: ASCII letters, digits, - and _.
        room = slugify(name)[:50]
        if room == ADMIN_ROOM:
            return redirect("admin-chat")
        if room:
            return redirect("room", room=room)
        error = (
            f"“{name}” has no letters or digits to make a room name from: "
            "use a-z, 0-9, - or _ (emoji and other symbols are left out)."
        )
    rooms = (
        Message.objects.exclude(room=ADMIN_ROOM)
        .values("room")
        .annotate(count=Count("id"), last=Max("created"))
        .order_by("-last")[:20]
    )
    now = timezone.now()
    rooms = [{**r, "last_active": last_active(r["last"], now)} for r in rooms]
    return render(request, "chat/index.html", {"rooms": rooms, "error": error, "name": name})


def last_active(when: datetime, now: datetime) -> str:
    """How long ago a room was last active: "just now" in the first minute (where
    ``timesince`` says "0 minutes"), then "5 minutes ago", "2 days, 3 hours ago"."""
    if (now - when).total_seconds() < 60:
        return "just now"
    return f"{timesince(when, now)} ago"


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
