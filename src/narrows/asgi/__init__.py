"""Django's HTTP handler for narrows: sync views at WSGI speed beside WebSockets on one port.

In ``asgi.py``, one import changes::

    from narrows.asgi import get_asgi_application   # was: from django.core.asgi import ...

``ASGIHandler`` is a subclass of Django's, so ``isinstance`` checks and existing subclasses
keep working. How it runs views (threads, connections, sizing ``--threads``) is in
``docs/django-views.md``.
"""

from __future__ import annotations

from narrows.asgi.handler import ASGIHandler
from narrows.asgi.request import ASGIRequest

__all__ = ["ASGIHandler", "ASGIRequest", "get_asgi_application"]


def get_asgi_application() -> ASGIHandler:
    """Set Django up and return its ASGI application (``django.core.asgi``'s, made by narrows).

    Like Django's, it calls ``django.setup(set_prefix=False)``: the script prefix comes
    from each request's ``root_path`` (or ``FORCE_SCRIPT_NAME``).
    """
    import django

    django.setup(set_prefix=False)
    return ASGIHandler()
