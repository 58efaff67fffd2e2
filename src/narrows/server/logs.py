"""Logging for the server process: ``-v/--verbosity`` 0..3 and ``--log-fmt``.

0: warnings and errors; 1: info (startup, "Listening on ..."); 2: debug; 3: debug plus
asyncio's debug mode. Nothing on the request hot path formats a message unless its level
is enabled (the access log is a separate, opt-in writer).
"""

from __future__ import annotations

import logging
import sys

__all__ = ["LEVELS", "configure_logging"]

LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


def configure_logging(verbosity: int, log_fmt: str) -> None:
    level = LEVELS.get(max(0, min(verbosity, 3)), logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(log_fmt))
    for name in ("narrows",):
        log = logging.getLogger(name)
        log.handlers = [handler]
        log.setLevel(level)
        log.propagate = False
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format=log_fmt)
