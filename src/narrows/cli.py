"""The ``narrows`` command: ``narrows startproject NAME`` or ``narrows [options] module:app``.

The protocol server's command line lives in ``narrows.server.cli``, which never imports
Django; this entry point only picks between it and the project template command.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["startproject"]:
        from narrows.startproject import main as startproject

        sys.exit(startproject(args[1:]))
    from narrows.server.cli import main as serve

    serve(args)
