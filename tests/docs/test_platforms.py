"""docs/platforms.md's table of tested versions says what CI runs, no more and no less."""

from __future__ import annotations

import re
import subprocess
import sys

import django
from tests.helpers import ROOT, require_binary

PAGE = (ROOT / "docs" / "platforms.md").read_text()
MATRIX = PAGE.split("<!-- matrix:", 1)[1].split("\n\n", 1)[0]


def versions_in_matrix(component: str) -> set[str]:
    row = re.search(rf"^\| {re.escape(component)} \| (?P<versions>[^|]+) \|", MATRIX, re.M)
    assert row, f"no {component} row in docs/platforms.md's matrix"
    return set(re.findall(r"\d+\.\d+", row["versions"]))


def test_python_versions_are_the_ones_scripts_test_runs() -> None:
    script = (ROOT / "scripts" / "test").read_text()
    extra = set(re.findall(r"python(3\.\d+)\b", script))
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert versions_in_matrix("Python") == {running} | extra


def test_django_version_is_the_installed_one() -> None:
    assert f"{django.VERSION[0]}.{django.VERSION[1]}" in versions_in_matrix("Django")


def test_redis_version_is_the_server_the_tests_start() -> None:
    binary = require_binary("redis-server")
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    version = re.search(r"v=(\d+\.\d+)", out)
    assert version, out
    assert versions_in_matrix("Redis server") == {version[1]}
