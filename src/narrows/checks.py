"""System checks for projects that list ``"narrows"`` in ``INSTALLED_APPS``.

=============  ===========================================================================
id             meaning
=============  ===========================================================================
narrows.E001   ``ASGI_APPLICATION`` is not a ``"module.attr"`` string (unset is fine:
               ``runserver`` then serves Django's views through ``narrows.asgi``)
narrows.E002   ``ASGI_APPLICATION`` cannot be imported (the message says what failed)
narrows.W001   ``"narrows"`` is listed after ``"django.contrib.staticfiles"``, so
               ``manage.py runserver`` would be staticfiles' WSGI server, not narrows'
=============  ===========================================================================

``warn_about_per_process_layers()`` runs when the app is ready: under ``narrows --workers N``
(N > 1) it logs one warning, from the first worker, for each channel layer that lives inside
one process (the in-memory layer), since groups then split across the workers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

STATICFILES_APP = "django.contrib.staticfiles"


@register(Tags.compatibility)
def check_asgi_application(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """E001 when ``ASGI_APPLICATION`` is malformed, E002 when it does not import."""
    path = getattr(settings, "ASGI_APPLICATION", None)
    if path is None or path == "":
        return []  # runserver serves Django's views (narrows.asgi), as Django's own would
    if not isinstance(path, str) or "." not in path:
        return [
            Error(
                f'ASGI_APPLICATION must be a dotted path like "myproject.asgi.application", '
                f"got {path!r}.",
                id="narrows.E001",
            )
        ]
    try:
        application = import_string(path)
    except Exception as exc:
        return [
            Error(
                f"ASGI_APPLICATION {path!r} could not be imported: {type(exc).__name__}: {exc}",
                hint="Check the module path and that the module imports without errors "
                "(run: python -c 'import MODULE').",
                id="narrows.E002",
            )
        ]
    if not callable(application):
        return [
            Error(
                f"ASGI_APPLICATION {path!r} must be an ASGI application (a callable), "
                f"got {type(application).__name__}.",
                id="narrows.E002",
            )
        ]
    return []


@register(Tags.compatibility)
def check_app_order(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """W001 when staticfiles' ``runserver`` would win over narrows'.

    Django takes a management command from the *first* app in ``INSTALLED_APPS`` that
    provides it, and ``django.contrib.staticfiles`` has its own (WSGI) ``runserver``.
    """
    installed = [config.name for config in apps.get_app_configs()]
    if STATICFILES_APP not in installed or "narrows" not in installed:
        return []
    if installed.index("narrows") < installed.index(STATICFILES_APP):
        return []
    return [
        Warning(
            '"narrows" is listed after "django.contrib.staticfiles" in INSTALLED_APPS, so '
            "manage.py runserver starts staticfiles' WSGI server (no WebSocket) instead of "
            "narrows.",
            hint='Move "narrows" above "django.contrib.staticfiles" in INSTALLED_APPS.',
            id="narrows.W001",
        )
    ]


def warn_about_per_process_layers(environ: Mapping[str, str] = os.environ) -> bool:
    """Warn (once per server: only worker number 1 does) when ``--workers N`` serves a
    channel layer that cannot reach the other workers; True if it warned."""
    try:
        workers = int(environ.get("NARROWS_WORKERS") or 1)
    except ValueError:
        return False
    if workers <= 1 or environ.get("NARROWS_WORKER_NUMBER") != "1":
        return False
    from narrows.layers.inmemory import InMemoryChannelLayer

    warned = False
    for alias, layer in (getattr(settings, "CHANNEL_LAYERS", None) or {}).items():
        backend = layer.get("BACKEND") if isinstance(layer, Mapping) else None
        if not isinstance(backend, str):
            continue
        try:
            per_process = issubclass(import_string(backend), InMemoryChannelLayer)
        except Exception:  # a bad BACKEND is get_channel_layer()'s error to report
            continue
        if per_process:
            logging.getLogger("narrows.layers").warning(
                "--workers %d with the in-memory channel layer: each worker process has its "
                "own, so a group_send reaches only the clients of the worker that sent it. "
                'Set CHANNEL_LAYERS["%s"]["BACKEND"] = "narrows.layers.redis.RedisChannelLayer" '
                "(with CONFIG hosts) to share groups between workers, or serve one process.",
                workers,
                alias,
            )
            warned = True
    return warned
