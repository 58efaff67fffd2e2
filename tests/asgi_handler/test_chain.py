"""The flattened async chain does what Django's async chain does, call for call.

For generated middleware stacks (MiddlewareMixin layers, sync-only ones, middleware with
their own ``__call__``, short-circuits, exceptions in every method, exception middleware)
and views (async, raising, template responses, sync), the same request goes through
Django's own ``ASGIHandler`` chain and through narrows'. The calls each makes (in order) and
the response must be the same.
"""

from __future__ import annotations

import asyncio
import threading
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


async def run_handler(handler: Any, target: str, query: bytes = b"") -> tuple[list[str], list[Any]]:
    """The whole ASGI request through ``handler``, with the request signals logged."""
    from asgiref.testing import ApplicationCommunicator
    from django.core.signals import request_finished, request_started

    def started(**kwargs: Any) -> None:
        chain_cases.log(f"request_started {kwargs['sender'].__name__}")

    def finished(**kwargs: Any) -> None:
        chain_cases.log(f"request_finished {getattr(kwargs['sender'], '__name__', None)}")

    request_started.connect(started)
    request_finished.connect(finished)
    chain_cases.EVENTS.clear()
    try:
        scope = {**AsyncRequestFactory()._base_scope(path=target), "query_string": query}
        communicator = ApplicationCommunicator(handler, scope)
        await communicator.send_input({"type": "http.request"})
        messages = [await communicator.receive_output(5), await communicator.receive_output(5)]
        await communicator.wait(5)
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    start, body = messages
    # ASGI's default for more_body is False: Django spells it out, narrows leaves it out.
    body = {**body, "more_body": body.get("more_body", False)}
    return list(chain_cases.EVENTS), [start["status"], sorted(start["headers"]), body]


def compare_handlers(
    stack: list[tuple[str, str, str, str, str]], view: str, query: bytes = b""
) -> None:
    middleware = [chain_cases.middleware_class(*spec) for spec in stack]
    chain_cases.VIEW["kind"] = view
    with override_settings(
        MIDDLEWARE=middleware,
        ROOT_URLCONF="tests.asgi_handler.chain_cases",
        TEMPLATES=TEMPLATES,
        DEBUG=False,
    ):
        target = "/s/" if view.startswith("sync") else "/a/"
        theirs = asyncio.run(run_handler(DjangoASGIHandler(), target, query))
        ours = asyncio.run(run_handler(ASGIHandler(), target, query))
    theirs[0][:] = [e.replace("ASGIHandler", "handler") for e in theirs[0]]
    ours[0][:] = [e.replace("ASGIHandler", "handler") for e in ours[0]]
    assert ours == theirs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stack=st.lists(layer, min_size=0, max_size=4), view=views.filter(lambda v: v[:4] != "sync"))
def test_whole_request_matches_django_signals_included(stack: list[Any], view: str) -> None:
    """request_started, the chain, request_finished: the same events in the same order,
    the same messages, whether or not the first and last hops fold into a segment's."""
    compare_handlers(stack, view)


def test_bad_request_on_the_folded_path_matches_django() -> None:
    """create_request's 400 (a query string that is not UTF-8), inside the folded first hop."""
    compare_handlers([("mixin", "none", "pass", "none", "none")], "async", b"q=%ff\xff")


def test_signals_fold_into_the_segments_hops() -> None:
    """startproject-like stack, async view: request_started runs in the same pool job as the
    first process_request, request_finished in the same one as the last process_response."""
    from asgiref.testing import ApplicationCommunicator
    from django.core.signals import request_finished, request_started

    threads: dict[str, int] = {}

    def started(**kwargs: Any) -> None:
        threads["started"] = threading.get_ident()

    def finished(**kwargs: Any) -> None:
        threads["finished"] = threading.get_ident()

    chain_cases.VIEW["kind"] = "async"
    outer = chain_cases.middleware_class("mixin", "none", "pass", "none", "none")
    inner = chain_cases.middleware_class("mixin", "none", "pass", "absent", "absent")
    seen: dict[str, int] = {}

    class Watch(chain_cases.__dict__[outer.rsplit(".", 1)[1]]):  # type: ignore[misc]
        def process_request(self, request: Any) -> None:
            seen["request"] = threading.get_ident()

        def process_response(self, request: Any, response: Any) -> Any:
            seen["response"] = threading.get_ident()
            return response

    chain_cases.Watch = Watch  # type: ignore[attr-defined]
    request_started.connect(started)
    request_finished.connect(finished)
    try:
        with override_settings(
            MIDDLEWARE=["tests.asgi_handler.chain_cases.Watch", inner],
            ROOT_URLCONF="tests.asgi_handler.chain_cases",
        ):

            async def go() -> None:
                communicator = ApplicationCommunicator(ASGIHandler(), {
                    **AsyncRequestFactory()._base_scope(path="/a/")})  # fmt: skip
                await communicator.send_input({"type": "http.request"})
                assert (await communicator.receive_output(5))["status"] == 200
                await communicator.receive_output(5)
                await communicator.wait(5)

            for _ in range(20):  # pool threads could coincide by chance, but not 20 times
                threads.clear()
                seen.clear()
                asyncio.run(go())
                assert threads["started"] == seen["request"]
                assert threads["finished"] == seen["response"]
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)


def test_each_middleware_is_instantiated_once_for_both_paths() -> None:
    """A sync and an async view served by one handler: startproject-like middleware made
    once, one instance (and its state) for both paths."""
    made: list[int] = []
    base = chain_cases.middleware_class("mixin", "none", "pass", "none", "none")

    class Counted(chain_cases.__dict__[base.rsplit(".", 1)[1]]):  # type: ignore[misc]
        def __init__(self, get_response: Any) -> None:
            super().__init__(get_response)
            made.append(id(self))

        def process_request(self, request: Any) -> None:
            self.seen = getattr(self, "seen", 0) + 1

    chain_cases.Counted = Counted  # type: ignore[attr-defined]
    with override_settings(
        MIDDLEWARE=["tests.asgi_handler.chain_cases.Counted"],
        ROOT_URLCONF="tests.asgi_handler.chain_cases",
        TEMPLATES=TEMPLATES,
    ):
        handler = ASGIHandler()
        for view, target in [("sync", "/s/"), ("async", "/a/"), ("sync", "/s/")]:
            chain_cases.VIEW["kind"] = view
            asyncio.run(run_handler(handler, target))
    assert len(made) == 1
    [instance] = handler._middleware_chain.layers
    assert instance.seen == 3


def test_whole_request_sweep() -> None:
    """Each view kind behind all-mixin stacks (one shared segment) and a mixed one."""
    mixins = [
        ("mixin", "none", "pass", "none", "handle"),
        ("mixin", "none", "replace", "none", "none"),
    ]
    short = [
        ("mixin", "short", "pass", "absent", "absent"),
        ("mixin", "none", "pass", "none", "none"),
    ]
    mixed = [
        ("mixin", "none", "pass", "none", "none"),
        ("function-sync", "none", "pass", "none", "none"),
    ]
    for view in ["async", "async-raise", "async-template", "sync", "sync-raise"]:
        for stack in (mixins, short, mixed, []):
            compare_handlers(stack, view)


def test_context_set_by_a_middleware_reaches_the_view_as_in_django() -> None:
    """A ContextVar and asgiref Local data (translation.activate) set in process_request,
    in a pool thread, are seen by the view and by process_response, as under Django."""
    for target in ["/ctx/", "/sctx/"]:
        with override_settings(
            MIDDLEWARE=["tests.asgi_handler.chain_cases.SetsContext"],
            ROOT_URLCONF="tests.asgi_handler.chain_cases",
            USE_I18N=True,
        ):
            theirs = asyncio.run(run_handler(DjangoASGIHandler(), target))
            ours = asyncio.run(run_handler(ASGIHandler(), target))
        assert ours == theirs
        view = "sync view" if target == "/sctx/" else "view"
        assert ours[0][1:3] == [
            f"{view} sees set in process_request fr",
            "response sees set in process_request fr",
        ], ours
        assert ours[1][0] == 200
