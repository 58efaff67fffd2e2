"""Logging for the server process: ``-v/--verbosity`` 0..3 and ``--log-fmt``.

0: warnings and errors; 1: info (startup, "Listening on ..."); 2: debug; 3: debug plus
asyncio's debug mode. Nothing on the request hot path formats a message unless its level
is enabled (the access log is a separate, opt-in writer).

Messages can carry what a client chose (a percent-decoded path, a header value in an error
reason): ``EscapingFormatter`` writes their control characters as ``\\xNN`` so no client can
split a log line or send terminal escapes to whoever reads the log. Tracebacks are kept.
"""

from __future__ import annotations

import logging
import re
import sys

__all__ = ["LEVELS", "EscapingFormatter", "configure_logging", "escape_control"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escape_char(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def escape_control(text: str) -> str:
    """``text`` with its control characters written as ``\\xNN`` (safe for one log line)."""
    return _CONTROL.sub(_escape_char, text)


class EscapingFormatter(logging.Formatter):
    """A ``logging.Formatter`` that escapes control characters in the message."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = record.message
        safe = escape_control(message)
        if safe == message:
            return super().formatMessage(record)
        record.message = safe  # the record may reach other handlers: restore it after
        try:
            return super().formatMessage(record)
        finally:
            record.message = message


LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


def configure_logging(verbosity: int, log_fmt: str) -> None:
    level = LEVELS.get(max(0, min(verbosity, 3)), logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter(log_fmt))
    for name in ("narrows",):
        log = logging.getLogger(name)
        log.handlers = [handler]
        log.setLevel(level)
        log.propagate = False
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format=log_fmt)
