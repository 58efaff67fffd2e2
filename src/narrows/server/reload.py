"""``--reload``: watch Python source files and tell the supervisor when they change.

The watching itself is watchfiles' job (inotify/FSEvents through Rust's ``notify``, with
debouncing and the usual ignore list: ``.git``, ``.venv``, ``__pycache__``...). This module
only runs its blocking ``watch()`` generator on a thread and turns every batch of changes
into one byte on a pipe, so the supervisor's ``selectors`` loop can wait for file changes,
worker heartbeats and signals in one place.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger("narrows.server.reload")


class ChangeWatcher:
    """Watches ``dirs`` for changed ``.py`` files on a background thread.

    ``fileno()`` becomes readable after each batch of changes; ``take_changes()`` returns
    the changed paths collected since the last call and empties the pipe.
    """

    def __init__(self, dirs: Sequence[str], *, debounce_ms: int = 300) -> None:
        self.dirs = tuple(str(Path(d).resolve()) for d in dirs) or (str(Path.cwd()),)
        self._debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._changes: set[str] = set()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        self._thread: threading.Thread | None = None

    def fileno(self) -> int:
        return self._read_fd

    def start(self) -> None:
        try:
            import watchfiles  # noqa: F401  (fail here, in the parent, with a clear message)
        except ImportError as exc:
            raise RuntimeError("--reload needs watchfiles: pip install 'narrows[reload]'") from exc
        self._thread = threading.Thread(target=self._watch, name="narrows-reload", daemon=True)
        self._thread.start()
        logger.info("Watching for changes to .py files in %s", ", ".join(self.dirs))

    def _watch(self) -> None:
        import watchfiles

        for batch in watchfiles.watch(
            *self.dirs,
            watch_filter=watchfiles.PythonFilter(),
            debounce=self._debounce_ms,
            step=50,
            rust_timeout=500,
            stop_event=self._stop,
            raise_interrupt=False,
        ):
            with self._lock:
                self._changes.update(path for _change, path in batch)
            try:
                os.write(self._write_fd, b"!")
            except OSError:  # the supervisor closed the pipe while we were watching
                return

    def take_changes(self) -> list[str]:
        try:
            while os.read(self._read_fd, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            changes, self._changes = sorted(self._changes), set()
        return changes

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        for fd in (self._read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
