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


SCRIPT = (ROOT / "scripts" / "test").read_text()


def test_python_versions_are_the_ones_scripts_test_runs() -> None:
    loop = re.search(r"^for version in (?P<versions>[\d. ]+); do$", SCRIPT, re.M)
    assert loop, "scripts/test no longer loops over Python versions"
    extra = {".".join(v.split(".")[:2]) for v in loop["versions"].split()}
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert versions_in_matrix("Python") == {running} | extra


def test_django_versions_are_the_installed_one_and_the_ones_scripts_test_runs() -> None:
    installed = f"{django.VERSION[0]}.{django.VERSION[1]}"
    extra = set(re.findall(r"'Django>=(\d+\.\d+),<", SCRIPT))
    assert extra, "scripts/test no longer runs another Django"
    suites = (ROOT / "tests" / "asgi_handler" / "test_django_suite.py").read_text()
    suite_series = set(re.findall(r'"(\d\.\d)"', suites))
    assert versions_in_matrix("Django") == {installed} | extra | suite_series


def test_redis_version_is_the_server_the_tests_start() -> None:
    binary = require_binary("redis-server")
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    version = re.search(r"v=(\d+\.\d+)", out)
    assert version, out
    assert versions_in_matrix("Redis server") == {version[1]}
