"""Pieces that need no processes: limits, intervals, the file watcher, app-loading errors."""

from __future__ import annotations

import select
import threading
from pathlib import Path

import pytest

from narrows.server.app_loader import AppLoadError, load_app
from narrows.server.config import Config
from narrows.server.reload import ChangeWatcher
from narrows.server.workers import heartbeat_interval, request_limit


def test_request_limit_adds_a_jitter_within_bounds() -> None:
    assert request_limit(Config()) is None
    limits = {request_limit(Config(max_requests=100, max_requests_jitter=10)) for _ in range(300)}
    assert limits <= set(range(100, 111))
    assert len(limits) > 3
    assert request_limit(Config(max_requests=7)) == 7


def test_heartbeats_come_several_times_per_health_check_period() -> None:
    assert heartbeat_interval(Config(worker_healthcheck_timeout=30)) == 1.0
    assert heartbeat_interval(Config(worker_healthcheck_timeout=2)) == 0.4


def test_watcher_reports_changed_python_files_only(tmp_path: Path) -> None:
    watcher = ChangeWatcher([str(tmp_path)], debounce_ms=50)
    watcher.start()
    try:
        (tmp_path / "pkg").mkdir()
        module = tmp_path / "pkg" / "mod.py"
        # The watcher thread needs a moment to start watching; keep writing until it sees it.
        for attempt in range(40):
            module.write_text(f"x = {attempt}\n")
            if select.select([watcher.fileno()], [], [], 0.5)[0]:
                break
        # Creating and writing may come as several batches: take them all, until quiet.
        changes = set(watcher.take_changes())
        while select.select([watcher.fileno()], [], [], 0.5)[0]:
            changes.update(watcher.take_changes())
        assert changes == {str(module)}
        # Now that it is surely watching: other files are not code.
        (tmp_path / "notes.txt").write_text("x")
        assert select.select([watcher.fileno()], [], [], 1.5)[0] == []
        assert watcher.take_changes() == []
    finally:
        watcher.close()
    assert not any(t.name == "narrows-reload" for t in threading.enumerate())


def test_a_missing_import_inside_the_app_is_not_reported_as_the_app_missing(
    tmp_path: Path,
) -> None:
    # The deployment tests hit this: DJANGO_SETTINGS_MODULE=tests.settings leaking into
    # "tests_app.asgi" was reported as "Could not import module tests_app.asgi".
    (tmp_path / "myproj_asgi.py").write_text("import myproj_missing_dependency\napp = None\n")
    with pytest.raises(ModuleNotFoundError, match="myproj_missing_dependency"):
        load_app("myproj_asgi:app", str(tmp_path))
    with pytest.raises(AppLoadError, match='Could not import module "myproj_nowhere"'):
        load_app("myproj_nowhere:app", str(tmp_path))
