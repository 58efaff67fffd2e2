"""The three workloads: a realistic page, its async twin, and a bare JsonResponse."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from bench.django_site.models import Item


def page(request: HttpRequest) -> HttpResponse:
    items = list(Item.objects.order_by("id")[:10])
    return render(request, "django_site/page.html", {"items": items, "title": "Items"})


async def page_async(request: HttpRequest) -> HttpResponse:
    items = [item async for item in Item.objects.order_by("id")[:10]]
    return render(request, "django_site/page.html", {"items": items, "title": "Items"})


def json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"message": "Hello, world"})
