"""Build the ASGI application ``manage.py runserver`` serves."""

from __future__ import annotations

from typing import cast

from django.apps import apps
from django.conf import settings

from narrows.management.devlog import DevLogMiddleware, Writer
from narrows.routing import get_default_application
from narrows.types import ASGIApp


def development_application(*, serve_static: bool, insecure: bool, write: Writer | None) -> ASGIApp:
    """``ASGI_APPLICATION`` wrapped for development: static files and log lines.

    Without ``ASGI_APPLICATION``, Django's views through narrows' handler (what
    ``narrows.asgi.get_asgi_application()`` returns), as Django's own ``runserver`` falls
    back to its default handler without ``WSGI_APPLICATION``.

    Static files are served as Django's own ``runserver`` serves them: only when
    ``django.contrib.staticfiles`` is installed, and only when ``DEBUG`` is on or
    ``--insecure`` was given; through narrows' handler (``sendfile``, never a whole file
    in memory).
    """
    if getattr(settings, "ASGI_APPLICATION", None):
        application = cast(ASGIApp, get_default_application())
    else:
        from narrows.asgi import ASGIHandler  # Django is set up: no second django.setup()

        application = cast(ASGIApp, ASGIHandler())
    staticfiles = apps.is_installed("django.contrib.staticfiles")
    if serve_static and staticfiles and (settings.DEBUG or insecure):
        from narrows.asgi.staticfiles import ASGIStaticFilesHandler

        # It serves STATIC_URL for "http" scopes and passes every other scope (websocket,
        # lifespan) to the application untouched, as Django's does.
        application = cast(ASGIApp, ASGIStaticFilesHandler(application))
    if write is not None:
        application = DevLogMiddleware(application, write)
    return application
