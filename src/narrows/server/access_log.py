"""The access log, in Daphne's NCSA-like format.

    127.0.0.1:52100 - - [22/Nov/2026:01:02:03] "GET /path" 200 12
    127.0.0.1:52102 - - [22/Nov/2026:01:02:04] "WSCONNECT /ws/chat/" - -

Written to a file (appended) or to stdout (``--access-log -``); off unless asked for. Without
``--access-log``, the lines go to the ``narrows.access`` logger at INFO when a logging setup
(``--log-config``, Django's ``LOGGING``) gave that logger a handler.
Control characters, quotes and backslashes in the request fields are escaped (``\\xNN``)
so a crafted path cannot forge a log line. A log file that cannot be opened or written is
reported once on the ``narrows.server`` logger and never takes the server down.
"""

from __future__ import annotations

import datetime
import logging
import re
import sys
from typing import Final, Literal, TextIO

from narrows.types import Address

__all__ = ["AccessLog"]

logger = logging.getLogger("narrows.server")

WebSocketEvent = Literal["WSCONNECTING", "WSCONNECT", "WSREJECT", "WSDISCONNECT"]
_WS_EVENTS: Final = frozenset({"WSCONNECTING", "WSCONNECT", "WSREJECT", "WSDISCONNECT"})
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f"\\]')


def _escape_char(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def escape(value: str) -> str:
    """Make ``value`` safe to put inside one quoted log field."""
    return _UNSAFE.sub(_escape_char, value)


def format_client(client: Address | None) -> str:
    if not client:
        return "-"
    host, port = client
    return escape(f"{host}:{port}" if port is not None else str(host))


class AccessLog:
    """``AccessLog(path)``: ``path`` is a file name, ``"-"`` for stdout, a stream, or a
    ``logging.Logger`` (each line is an INFO record, without its newline)."""

    def __init__(self, target: str | TextIO | logging.Logger) -> None:
        self._target = target
        self._stream: TextIO | None = None
        self._logger = target if isinstance(target, logging.Logger) else None
        self._failed = False
        if isinstance(target, logging.Logger):
            self._owned = False
        elif isinstance(target, str):
            self._owned = target != "-"
            self._open()
        else:
            self._owned = False
            self._stream = target

    def _open(self) -> None:
        if self._target == "-":
            self._stream = sys.stdout
            return
        assert isinstance(self._target, str)
        try:
            self._stream = open(self._target, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        except OSError as exc:
            self._report(exc)

    def _report(self, exc: OSError) -> None:
        if not self._failed:
            self._failed = True
            logger.error("Access log %s is not writable: %s", self._target, exc)

    def http(self, client: Address | None, method: str, path: str, status: int, size: int) -> None:
        request = f"{escape(method)} {escape(path)}"
        self._write(format_client(client), request, str(status), str(size) if size else "-")

    def websocket(self, event: WebSocketEvent, client: Address | None, path: str) -> None:
        if event not in _WS_EVENTS:
            raise ValueError(f"Expected one of {sorted(_WS_EVENTS)}, got {event!r}")
        self._write(format_client(client), f"{event} {escape(path)}", "-", "-")

    def _write(self, host: str, request: str, status: str, length: str) -> None:
        date = datetime.datetime.now().strftime("%d/%b/%Y:%H:%M:%S")
        if self._logger is not None:
            self._logger.info('%s - - [%s] "%s" %s %s', host, date, request, status, length)
            return
        stream = self._stream
        if stream is None:
            return
        line = f'{host} - - [{date}] "{request}" {status} {length}\n'
        try:
            stream.write(line)
            if not self._owned:
                stream.flush()
        except (OSError, ValueError) as exc:
            self._report(OSError(str(exc)))

    def close(self) -> None:
        if self._owned and self._stream is not None:
            try:
                self._stream.close()
            except OSError:
                pass
        self._stream = None
