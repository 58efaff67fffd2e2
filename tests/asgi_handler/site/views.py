import asyncio
import json
import sqlite3
import threading
import time

from django.db import connection, transaction
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt


def meta(request, rest=None):
    """META as JSON: strings, bools and tuples by value; objects (streams) by kind only."""

    def shown(value):
        if isinstance(value, str | bool | int | tuple):
            return [type(value).__name__, repr(value)]
        return ["object", "file-like" if hasattr(value, "write") or hasattr(value, "read") else ""]

    extra = {"(path)": request.path, "(path_info)": request.path_info,
             "(COOKIES)": json.dumps(request.COOKIES, sort_keys=True)}  # fmt: skip
    return JsonResponse({key: shown(value) for key, value in {**request.META, **extra}.items()})


def pool_size(request):
    from narrows.asgi.pool import get_pool

    return HttpResponse(str(get_pool().size))


def sleep(request):
    time.sleep(float(request.GET.get("s", "1")))
    return HttpResponse(threading.current_thread().name)


def db_thread(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse(
        {"thread": threading.current_thread().name, "connection": id(connection.connection)}
    )


@csrf_exempt
def write_then_fail(request):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO notes (text) VALUES ('written')")
    if request.GET.get("fail"):
        raise RuntimeError("rolled back by ATOMIC_REQUESTS")
    return HttpResponse("kept")


def notes(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM notes")
        return HttpResponse(str(cursor.fetchone()[0]))


@csrf_exempt
def upload(request):
    files = {
        name: [type(f).__name__, f.size, getattr(f, "temporary_file_path", lambda: "")() != ""]
        for name, f in request.FILES.items()
    }
    return JsonResponse({"files": files, "fields": dict(request.POST.items())})


@csrf_exempt
def body_length(request):
    return HttpResponse(str(len(request.body)))


def stream(request):
    def parts():
        for n in range(int(request.GET.get("n", "3"))):
            yield f"part {n}\n".encode()

    return StreamingHttpResponse(parts())


#: what the last /endless/ stream did: parts produced, and whether its generator was closed
endless_state = {"parts": 0, "closed": False}


def endless(request):
    """A stream far longer than any client reads (a million parts of 1 KB)."""

    def parts():
        endless_state.update(parts=0, closed=False)
        try:
            for _ in range(1_000_000):
                endless_state["parts"] += 1
                yield b"x" * 1000
        finally:
            endless_state["closed"] = True

    return StreamingHttpResponse(parts())


def endless_state_view(request):
    return JsonResponse(endless_state)


def a_file(request):
    return FileResponse(open(__file__, "rb"))


@transaction.non_atomic_requests  # ATOMIC_REQUESTS refuses async views, as in Django
async def async_hello(request):
    await asyncio.sleep(0)
    return HttpResponse(f"async on {threading.current_thread().name}")


def make_notes_table(path: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT)")
