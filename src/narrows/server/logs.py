"""Logging for the server process: ``-v/--verbosity`` 0..3, ``--log-fmt``, ``--log-config``.

0: warnings and errors; 1: info (startup, "Listening on ..."); 2: debug; 3: debug plus
asyncio's debug mode. Nothing on the request hot path formats a message unless its level
is enabled (the access log is a separate, opt-in writer).

Every record is printed once. narrows' own loggers (``narrows.*``) get one stderr handler
and do not propagate. Other records (the application's, Django's) reach a fallback handler
on the root logger, which skips a record that a console handler below the root already
wrote: Django's default ``LOGGING`` prints ``django`` records itself when ``DEBUG`` is on,
and they also propagate to the root. A logging setup that is not narrows' own wins: when the
project's ``LOGGING`` (or any ``dictConfig``) already gave the ``narrows`` logger or the
root logger handlers, narrows leaves them alone. ``--log-config FILE`` replaces all of this
with the file: ``dictConfig`` from ``.json`` or ``.yaml``/``.yml`` (PyYAML), ``fileConfig``
from anything else (INI), as uvicorn reads it.

Messages can carry what a client chose (a percent-decoded path, a header value in an error
reason): ``EscapingFormatter`` writes their control characters as ``\\xNN`` so no client can
split a log line or send terminal escapes to whoever reads the log. Tracebacks are kept.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "ACCESS_LOGGER",
    "LEVELS",
    "EscapingFormatter",
    "LogConfigError",
    "configure_logging",
    "configured_access_logger",
    "escape_control",
    "load_log_config",
]

#: Access lines go to this logger when it has handlers and ``--access-log`` is not given.
ACCESS_LOGGER = "narrows.access"

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


class LogConfigError(ValueError):
    """``--log-config`` names a file that cannot be read or applied."""


LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


class _NarrowsHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stderr handler narrows gives its own loggers (replaced on every configure)."""


class _FallbackHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root logger's handler: writes a record no console handler below the root wrote."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not super().filter(record):
            return False
        return not _written_below_root(record)


def _is_console(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and not isinstance(
        handler, logging.FileHandler | _FallbackHandler
    )


def _written_below_root(record: logging.LogRecord) -> bool:
    """Did a console handler of ``record``'s logger or of its ancestors (the root excluded)
    accept it? Runs only for records that are being emitted, never on a disabled level."""
    root = logging.getLogger()
    if record.name == "root":
        return False
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None and logger is not root:
        for handler in logger.handlers:
            if _is_console(handler) and record.levelno >= handler.level and handler.filter(record):
                return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


def configured_access_logger() -> logging.Logger | None:
    """The ``narrows.access`` logger if a logging setup gave it handlers of its own."""
    logger = logging.getLogger(ACCESS_LOGGER)
    return logger if logger.handlers and not logger.disabled else None


def configure_logging(verbosity: int, log_fmt: str, log_config: str | None = None) -> None:
    """Set up logging for a server process (the narrows command, a worker, runserver)."""
    logging.getLogger("asyncio").setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
    if log_config is not None:
        load_log_config(log_config)
        return
    formatter = EscapingFormatter(log_fmt)
    narrows = logging.getLogger("narrows")
    if not [h for h in narrows.handlers if not isinstance(h, _NarrowsHandler)]:
        handler = _NarrowsHandler(sys.stderr)
        handler.setFormatter(formatter)
        narrows.handlers = [handler]
        narrows.setLevel(LEVELS.get(max(0, min(verbosity, 3)), logging.DEBUG))
        narrows.propagate = False
    root = logging.getLogger()
    if not [h for h in root.handlers if not isinstance(h, _FallbackHandler)]:
        fallback = _FallbackHandler(sys.stderr)
        fallback.setFormatter(formatter)
        root.handlers = [fallback]
        if root.level == logging.NOTSET:
            root.setLevel(logging.WARNING)


def load_log_config(path: str) -> None:
    """Apply ``path``: ``dictConfig`` for JSON/YAML, ``fileConfig`` for INI.

    Loggers that exist already stay enabled unless the file says
    ``disable_existing_loggers``; ``LogConfigError`` names the file and what is wrong.
    """
    file = Path(path)
    try:
        if file.suffix == ".json":
            logging.config.dictConfig(_read_json(file))
        elif file.suffix in (".yaml", ".yml"):
            logging.config.dictConfig(_read_yaml(file))
        else:
            if not file.is_file():
                raise FileNotFoundError(f"No such file: {str(file)!r}")
            logging.config.fileConfig(file, disable_existing_loggers=False)
    except LogConfigError:
        raise
    except Exception as exc:  # dictConfig/fileConfig raise ValueError, KeyError, OSError...
        raise LogConfigError(f"Could not apply --log-config {path}: {exc}") from exc


def _read_json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise LogConfigError(f"--log-config {file} is not valid JSON: {exc}") from exc
    return _as_dict_config(file, data)


def _read_yaml(file: Path) -> dict[str, Any]:
    try:
        import yaml
    except ImportError as exc:
        raise LogConfigError(
            f"--log-config {file} is YAML, which needs PyYAML: pip install PyYAML"
        ) from exc
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise LogConfigError(f"--log-config {file} is not valid YAML: {exc}") from exc
    return _as_dict_config(file, data)


def _as_dict_config(file: Path, data: object) -> dict[str, Any]:
    if not isinstance(data, dict) or "version" not in data:
        raise LogConfigError(
            f"--log-config {file}: expected a logging dictConfig mapping with a 'version' "
            f"key, got {type(data).__name__}"
        )
    data.setdefault("disable_existing_loggers", False)
    return data
