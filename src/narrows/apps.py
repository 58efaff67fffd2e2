"""``INSTALLED_APPS = [..., "narrows", ...]``: the Django app that brings the ASGI commands.

Listing the app gives ``manage.py runserver`` (ASGI, through the narrows server) and
``manage.py runworker``, and registers the system checks in ``narrows.checks``.
"""

from __future__ import annotations

from django.apps import AppConfig


class NarrowsConfig(AppConfig):
    name = "narrows"
    label = "narrows"
    verbose_name = "narrows"

    def ready(self) -> None:
        # Importing the module registers its checks with Django's check framework.
        from narrows import checks

        checks.warn_about_per_process_layers()
