"""``python -m narrows.startproject NAME [DIRECTORY]``: a new Django project routed for
HTTP + WebSocket.

It is ``django-admin startproject --template <narrows' template> NAME [DIRECTORY]``; every
``startproject`` option works. The template gives ``asgi.py`` with ``ProtocolTypeRouter``,
``AuthMiddlewareStack`` and ``AllowedHostsOriginValidator``, an echo consumer at ``/ws/echo/``,
``"narrows"`` first in ``INSTALLED_APPS`` and ``CHANNEL_LAYERS`` (in-memory, or Redis when
``REDIS_URL`` is set).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

#: Usable directly too: ``django-admin startproject --template "$(python -c
#: 'import narrows.startproject as s; print(s.TEMPLATE_DIR)')" NAME``.
TEMPLATE_DIR = Path(__file__).resolve().parent / "project_template"


def main(argv: Sequence[str] | None = None) -> int:
    """Create the project; returns the exit status (Django reports errors itself)."""
    from django.core.management import execute_from_command_line

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(
            "usage: narrows startproject NAME [DIRECTORY] [django-admin startproject options]\n"
            "Creates a Django project set up for HTTP + WebSocket with narrows."
        )
        return 0 if args else 2
    try:
        execute_from_command_line(
            ["narrows startproject", "startproject", "--template", str(TEMPLATE_DIR), *args]
        )
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
