"""The HTTP core as setup.py builds it: compiled by mypyc where it can be, never stale.

The rest of the suite runs on whichever form is installed (CI: compiled on Python 3.11, the
default, and on 3.13 with ``NARROWS_COMPILE=1``; pure Python on 3.12, the default there);
these tests check that the form
is the one the install asked for, and that a compiled core whose sources have changed since
its build gives way to the sources.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

import narrows.server.http
from narrows.server.http import compiled
from tests.helpers import IN_CI, ROOT

COMPILED = ["parser", "connection", "cycle", "protocol", "response", "scope", "date"]
# setup.py's wants_compiled(): compiled by default on 3.11 only.
WANTS_COMPILED = (
    os.environ.get("NARROWS_COMPILE", "1" if sys.version_info < (3, 12) else "0") != "0"
)


def test_the_core_is_in_the_form_the_install_asked_for() -> None:
    modules = [importlib.import_module(f"narrows.server.http.{name}") for name in COMPILED]
    files = {module.__name__: module.__file__ or "" for module in modules}
    if not WANTS_COMPILED:
        assert not compiled()
        assert all(file.endswith(".py") for file in files.values()), files
        return
    if not compiled() and not IN_CI:
        pytest.skip("the HTTP core is not compiled here (no C compiler at install time?)")
    assert compiled(), files
    assert not any(file.endswith(".py") for file in files.values()), files


def test_the_version_says_which_form_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "narrows", "--version"], capture_output=True, text=True, timeout=60
    )
    form = "compiled" if compiled() else "pure Python"
    assert done.stdout.strip().endswith(f"(HTTP core: {form})"), done.stdout + done.stderr


STALE_RECORD = """
import sys, types, warnings
tag = sys.implementation.cache_tag.replace("-", "_")
record = types.ModuleType(f"narrows.server.http._compiled_{tag}")
record.SOURCES = {name: "0" * 64 for name in %r}  # digests no source has
sys.modules[record.__name__] = record
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import narrows.server.http as http
    from narrows.server.http import protocol, date
print(protocol.__file__)
print(date.__file__)
print(http.compiled())
print([str(w.message) for w in caught if w.category is RuntimeWarning])
"""


def test_a_stale_compiled_core_gives_way_to_its_sources() -> None:
    """A record whose digests match no source (sources edited since the build): every
    compiled module is imported from its ``.py`` file instead, with a warning naming them."""
    done = subprocess.run(
        [sys.executable, "-c", STALE_RECORD % (COMPILED,)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    protocol_file, date_file, is_compiled, warnings = done.stdout.splitlines()
    assert protocol_file.endswith("protocol.py"), protocol_file
    assert date_file.endswith("date.py"), date_file
    assert is_compiled == "False"
    assert "parser.py, connection.py, cycle.py" in warnings, warnings
    assert "changed since the HTTP core was compiled" in warnings, warnings


def test_a_record_matching_the_sources_changes_nothing() -> None:
    """The same check with the real digests: nothing is redirected, nothing is said."""
    record_check = STALE_RECORD.replace(
        'record.SOURCES = {name: "0" * 64 for name in %r}  # digests no source has',
        "import hashlib, pathlib\n"
        f"base = pathlib.Path({str(ROOT / 'src' / 'narrows' / 'server' / 'http')!r})\n"
        "record.SOURCES = {name: hashlib.sha256((base / f'{name}.py').read_bytes()).hexdigest()"
        " for name in %r}",
    )
    done = subprocess.run(
        [sys.executable, "-c", record_check % (COMPILED,)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    protocol_file, _, is_compiled, warnings = done.stdout.splitlines()
    assert warnings == "[]"
    assert is_compiled == str(compiled())
    assert protocol_file.endswith(".py") is not compiled()


def test_the_package_under_test_is_this_checkout() -> None:
    assert narrows.server.http.__file__.startswith(str(ROOT / "src")), narrows.server.http.__file__


def test_narrows_pure_python_asks_for_the_sources() -> None:
    """``NARROWS_PURE_PYTHON=1`` runs a compiled install from its sources, silently."""
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "from narrows.server.http import compiled, protocol, parser\n"
        "print(protocol.__file__, parser.__file__, compiled())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NARROWS_PURE_PYTHON": "1"},
    )
    assert done.returncode == 0, done.stderr
    protocol_file, parser_file, is_compiled = done.stdout.split()
    assert protocol_file.endswith("protocol.py") and parser_file.endswith("parser.py")
    assert is_compiled == "False"
