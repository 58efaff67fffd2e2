from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def template_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project made by ``python -m narrows.startproject mysite`` (shared, read-only)."""
    parent = tmp_path_factory.mktemp("startproject")
    done = subprocess.run(
        [sys.executable, "-m", "narrows.startproject", "mysite"],
        cwd=parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return parent / "mysite"
