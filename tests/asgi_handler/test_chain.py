"""The flattened async chain does what Django's async chain does, call for call.

For generated middleware stacks (MiddlewareMixin layers, sync-only ones, middleware with
their own ``__call__``, short-circuits, exceptions in every method, exception middleware)
and views (async, raising, template responses, sync), the same request goes through
Django's own ``ASGIHandler`` chain and through narrows'. The calls each makes (in order) and
the response must be the same.
"""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.test import AsyncRequestFactory, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from narrows.asgi import ASGIHandler
from narrows.asgi.chain import Segment
from narrows.asgi.pool import get_pool
from narrows.asgi.threads import RequestThreads
from tests.asgi_handler import chain_cases

TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates"}]

layer = st.tuples(
    st.sampled_from(["mixin", "mixin", "mixin", "mixin-sync", "function-async", "function-sync"]),
    st.sampled_from(["absent", "none", "none", "short", "raise"]),
    st.sampled_from(["absent", "pass", "pass", "replace", "raise"]),
    st.sampled_from(["absent", "absent", "none", "short", "raise"]),
    st.sampled_from(["absent", "absent", "none", "handle"]),
)
views = st.sampled_from(["async", "async-raise", "async-template", "sync", "sync-raise"])


async def run_chain(handler: Any, target: str, context: Any) -> tuple[list[str], int, bytes]:
    chain_cases.EVENTS.clear()
    request = AsyncRequestFactory().get(target)
    async with context:
        response = await handler._middleware_chain(request)
    if hasattr(response, "render") and not response.is_rendered:
        response.render()
    return list(chain_cases.EVENTS), response.status_code, response.content


def compare(stack: list[tuple[str, str, str, str, str]], view: str) -> None:
    middleware = [chain_cases.middleware_class(*spec) for spec in stack]
    chain_cases.VIEW["kind"] = view
    target = "/s/" if view.startswith("sync") else "/a/"
    with override_settings(
        MIDDLEWARE=middleware,
        ROOT_URLCONF="tests.asgi_handler.chain_cases",
        TEMPLATES=TEMPLATES,
        DEBUG=False,
    ):
        theirs = asyncio.run(run_chain(DjangoASGIHandler(), target, ThreadSensitiveContext()))
        ours = asyncio.run(run_chain(ASGIHandler(), target, RequestThreads(get_pool())))
    assert ours == theirs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stack=st.lists(layer, min_size=0, max_size=6), view=views)
def test_flattened_chain_matches_django(stack: list[Any], view: str) -> None:
    compare(stack, view)


def test_startproject_stack_is_one_segment() -> None:
    """startproject's MIDDLEWARE (all MiddlewareMixin) flattens into a single segment."""
    startproject = [
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ]
    with override_settings(MIDDLEWARE=startproject):
        chain = ASGIHandler()._middleware_chain
    assert isinstance(chain, Segment)
    assert len(chain.layers) == 7
    assert chain.view is not None  # URL resolution and process_view join its first hop


def test_every_case_kind_once() -> None:
    """A fixed sweep over each behaviour, so the common cases run whatever hypothesis picks."""
    for kind in ["mixin", "mixin-sync", "function-async", "function-sync"]:
        for request in ["absent", "none", "short", "raise"]:
            for response in ["pass", "replace", "raise"]:
                compare([("mixin", "none", "pass", "none", "handle"),
                         (kind, request, response, "none", "none")], "async")  # fmt: skip
    for view in ["async", "async-raise", "async-template", "sync", "sync-raise"]:
        compare([("mixin", "none", "pass", "short", "handle")], view)
        compare([("mixin", "none", "pass", "none", "handle")], view)
        compare([("mixin", "none", "pass", "none", "none")], view)
