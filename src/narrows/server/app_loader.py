"""Import the ASGI application named ``"module.path:attribute"``.

The application directory (``--app-dir``, default the working directory, as Daphne does)
goes first on ``sys.path``. ASGI 2 double-callables are wrapped into ASGI 3 with asgiref's
``guarantee_single_callable``. Every failure raises ``AppLoadError`` with a message that
says what was expected and what was found.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from asgiref.compatibility import guarantee_single_callable

from narrows.types import ASGIApp

__all__ = ["AppLoadError", "load_app"]


class AppLoadError(Exception):
    pass


def load_app(spec: str, app_dir: str = ".") -> ASGIApp:
    module_name, sep, attrs = spec.partition(":")
    if not sep or not module_name or not attrs:
        raise AppLoadError(f'Expected the application as "module.path:attribute", got "{spec}"')
    directory = os.path.abspath(app_dir or ".")
    if directory not in sys.path[:1]:
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only when the module itself (or a parent package) is missing; a module it
        # imports that is missing ("tests" for "tests_app") is the application's error.
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise AppLoadError(
                f'Could not import module "{module_name}" (looked in {directory} and sys.path)'
            ) from exc
        raise
    obj: Any = module
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise AppLoadError(f'Module "{module_name}" has no attribute "{attrs}"') from None
    if not callable(obj):
        raise AppLoadError(f'Expected "{spec}" to be an ASGI callable, got {type(obj).__name__}')
    app: ASGIApp = guarantee_single_callable(obj)  # type: ignore[no-untyped-call]
    return app
