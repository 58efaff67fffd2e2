"""Which way a request goes: a pool thread for a sync view, the event loop for an async one.

The view is looked up from the URL before the request runs, with the same resolver Django
uses (``ROOT_URLCONF``, or the request class's ``urlconf``). The answer only picks the
strategy, never the behaviour: a view that turns out to be async on the thread path still
runs (Django's sync chain calls it through ``async_to_sync``, on the event loop) and a sync
view on the loop path runs through ``sync_to_async``. So a middleware that changes
``request.urlconf`` costs speed, not correctness.

Answers are cached per URL path (bounded), as resolving twice would cost a large urlconf
its regex walk twice.
"""

from __future__ import annotations

import functools
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.urls import get_resolver

__all__ = ["view_is_async"]


def view_is_async(urlconf: Any, path_info: str) -> bool:
    """True if ``path_info`` resolves to a coroutine view in ``urlconf`` (None: the setting)."""
    if urlconf is None:
        urlconf = settings.ROOT_URLCONF
    try:
        return _cached(urlconf, path_info)
    except TypeError:  # an unhashable urlconf (a list of patterns): not cached
        return _resolve(urlconf, path_info)


@functools.lru_cache(maxsize=2048)
def _cached(urlconf: Any, path_info: str) -> bool:
    return _resolve(urlconf, path_info)


def _resolve(urlconf: Any, path_info: str) -> bool:
    try:
        match = get_resolver(urlconf).resolve(path_info)
    except Exception:  # 404s and broken urlconfs are answered by Django's sync path
        return False
    return iscoroutinefunction(match.func)
