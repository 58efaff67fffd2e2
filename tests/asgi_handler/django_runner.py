"""Run Django's own test suite with narrows' ASGI handler swapped in for Django's.

    python tests/asgi_handler/django_runner.py --handler narrows|django DJANGO_TESTS_DIR \\
        [runtests.py arguments, e.g. asgi handlers]

``--handler narrows`` replaces, before any test module is imported,
``django.core.asgi.get_asgi_application``, ``django.core.handlers.asgi.ASGIHandler`` and
``ASGIRequest`` (also as ``django.test.client`` imported it, so ``AsyncClient`` and
``AsyncRequestFactory`` build narrows requests) with narrows'. Django's tests then import
and subclass narrows' classes wherever they name Django's. ``--handler django`` runs the
same suite untouched, for the baseline counts.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import os
import runpy
import sys
from typing import Any


def swap_in_narrows() -> None:
    import django.core.asgi
    import django.core.handlers.asgi
    import django.test.client

    import narrows.asgi

    django.core.handlers.asgi.ASGIHandler = narrows.asgi.ASGIHandler  # type: ignore[misc]
    django.core.handlers.asgi.ASGIRequest = narrows.asgi.ASGIRequest  # type: ignore[misc]
    django.core.asgi.get_asgi_application = narrows.asgi.get_asgi_application  # type: ignore[assignment]
    django.test.client.ASGIRequest = narrows.asgi.ASGIRequest  # type: ignore[misc]
    _count_paths()


def _count_paths() -> None:
    """Print, at exit, how many requests each of narrows' two paths served: proof that the
    suite ran through narrows and that both paths were exercised."""
    from narrows.asgi import handler

    counts: collections.Counter[str] = collections.Counter()
    in_thread, on_loop = handler.ASGIHandler._handle_in_thread, handler.ASGIHandler._handle_async

    async def counted_thread(self: Any, *args: Any) -> None:
        counts["pool thread (sync view)"] += 1
        await in_thread(self, *args)

    async def counted_loop(self: Any, *args: Any) -> None:
        counts["event loop (async view or override)"] += 1
        await on_loop(self, *args)

    handler.ASGIHandler._handle_in_thread = counted_thread  # type: ignore[method-assign]
    handler.ASGIHandler._handle_async = counted_loop  # type: ignore[method-assign]
    atexit.register(
        lambda: print(f"narrows.asgi served: {dict(counts) or 'nothing'}", file=sys.stderr)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--handler", choices=["narrows", "django"], required=True)
    parser.add_argument("tests_dir", help="the tests/ directory of a Django source tree")
    args, runtests_args = parser.parse_known_args()
    if args.handler == "narrows":
        swap_in_narrows()
    tests_dir = os.path.abspath(args.tests_dir)
    os.chdir(tests_dir)
    sys.path.insert(0, tests_dir)
    sys.argv = [os.path.join(tests_dir, "runtests.py"), *runtests_args]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
