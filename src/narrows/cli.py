"""The ``narrows`` command: ``narrows COMMAND ...`` or ``narrows [options] module:app``.

The protocol server's command line lives in ``narrows.server.cli``, which never imports
Django; this entry point only picks between it and the other commands, which are listed at
the end of ``narrows --help``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import NamedTuple


class Command(NamedTuple):
    module: str  # has ``main(argv) -> int``
    usage: str
    summary: str


COMMANDS = {
    "startproject": Command(
        "narrows.startproject",
        "NAME [DIRECTORY]",
        "create a Django project routed for HTTP and WebSocket",
    ),
    "migrate": Command(
        "narrows.migrate",
        "PATH... [--write]",
        "rename channels/channels_redis/daphne to narrows in code, settings and commands",
    ),
}


def commands_help() -> str:
    lines = ["other commands:"]
    for name, command in COMMANDS.items():
        lines.append(f"  narrows {name} {command.usage}")
        lines.append(f"      {command.summary}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    command = COMMANDS.get(args[0]) if args else None
    if command is not None:
        sys.exit(importlib.import_module(command.module).main(args[1:]))
    from narrows.server.cli import main as serve

    serve(args, epilog=commands_help())
