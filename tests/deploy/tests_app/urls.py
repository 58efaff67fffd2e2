import os

from django.http import HttpRequest, JsonResponse
from django.urls import path


def whoami(request: HttpRequest) -> JsonResponse:
    """Which process answered, and who Django thinks the client is (from proxy headers)."""
    return JsonResponse(
        {
            "pid": os.getpid(),
            "client": request.META.get("REMOTE_ADDR"),
            "scheme": request.scheme,
            "host": request.get_host(),
            "path": request.path,
        }
    )


urlpatterns = [path("", whoami), path("whoami", whoami)]
