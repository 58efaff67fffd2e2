"""ChannelsLiveServerTestCase: a real narrows server in a child process.

The cases (``auth_live_cases.py``) need a file-based test database, which the main test
settings do not use, so they run in a pytest process of their own with
``tests.framework.auth_live_settings``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from narrows.testing import ChannelsLiveServerTestCase
from tests.helpers import ROOT


def test_live_server_cases(tmp_path: Path) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "live.txt").write_text("static from the live server\n")
    env = {**os.environ, "NARROWS_LIVE_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/framework/auth_live_cases.py",
            "--ds=tests.framework.auth_live_settings",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rA",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "11 passed" in output, output


def test_in_memory_database_is_refused() -> None:
    class Case(ChannelsLiveServerTestCase):
        def test_nothing(self) -> None:
            raise AssertionError("not run")

    with pytest.raises(ImproperlyConfigured, match="expected a file-based test database"):
        Case.setUpClass()
