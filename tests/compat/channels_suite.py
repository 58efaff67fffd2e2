"""Channels' own test suite (django/channels ``tests/`` at 4.3.2) run against narrows.

Two ways: (a) migrated with ``narrows migrate``, (b) unchanged, with
``narrows.install_as_channels()`` called before pytest starts; ``--baseline`` also runs it
on the real Channels for comparison. Channels' PyPI sdist has no tests, so they come from
a checkout of the repository (or a bare clone: the 4.3.2 tag is exported from it).

    python -m tests.compat.channels_suite CHANNELS_CHECKOUT [--baseline]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.compat.suites import (
    INSTALL_AS_CHANNELS,
    Counts,
    at_once,
    migrate_tree,
    run_pytest,
    venv,
)

TAG = "4.3.2"
ENV_VAR = "NARROWS_CHANNELS_CHECKOUT"
#: Where this machine keeps a bare mirror of django/channels.
MIRROR = Path("/work/.mirror/django+channels/repo")
HOW_TO_GET_IT = (
    f"Channels' test suite needs a django/channels checkout: git clone --branch {TAG} "
    f"https://github.com/django/channels and set {ENV_VAR} to its path"
)
#: Channels' tox "tests" and "daphne" extras, less selenium and coverage.
REQUIREMENTS = ["pytest", "pytest-django", "pytest-asyncio", "async-timeout", "daphne"]
#: The Selenium tests need a browser driver and are left out, as in the 80-test count.
PYTEST_ARGS = ["-q", "--ignore=tests/sample_project/tests/test_selenium.py"]


def find_checkout() -> Path | None:
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured)
    return MIRROR if MIRROR.exists() else None


def export_tests(checkout: Path, destination: Path) -> None:
    """Channels' ``tests/`` and ``setup.cfg`` (its pytest settings) into ``destination``."""
    destination.mkdir(parents=True)
    if (checkout / "tests").is_dir():
        shutil.copytree(checkout / "tests", destination / "tests")
        shutil.copy2(checkout / "setup.cfg", destination / "setup.cfg")
        return
    archive = subprocess.run(
        ["git", f"--git-dir={checkout}", "archive", TAG, "tests", "setup.cfg"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive.stdout, check=True)


def run_both_ways(checkout: Path, *, baseline: bool = False) -> dict[str, tuple[Counts, str]]:
    """The ways at once: each in its own exported tree."""
    python = venv("channels-suite", REQUIREMENTS)
    real = (
        venv("channels-real", [f"channels=={TAG}", *REQUIREMENTS], with_narrows=False)
        if baseline
        else None
    )
    with tempfile.TemporaryDirectory(prefix="narrows-channels-suite-") as tmp:
        renamed, unchanged = Path(tmp, "renamed"), Path(tmp, "unchanged")
        export_tests(checkout, renamed)
        migrate_tree(renamed / "tests")
        export_tests(checkout, unchanged)
        runs: dict[str, Callable[[], tuple[Counts, str]]] = {
            "renamed (narrows migrate)": lambda: run_pytest(python, renamed, PYTEST_ARGS),
            "unchanged + install_as_channels()": lambda: run_pytest(
                python, unchanged, PYTEST_ARGS, prelude=INSTALL_AS_CHANNELS
            ),
        }
        if real is not None:
            on_channels = Path(tmp, "on-channels")
            export_tests(checkout, on_channels)
            runs[f"on Channels {TAG}"] = lambda: run_pytest(real, on_channels, PYTEST_ARGS)
        return dict(zip(runs, at_once(*runs.values()), strict=True))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, nargs="?", help="django/channels checkout")
    parser.add_argument("--baseline", action="store_true", help="also run on the real Channels")
    args = parser.parse_args(argv)
    checkout = args.checkout or find_checkout()
    if checkout is None:
        print(HOW_TO_GET_IT, file=sys.stderr)
        return 2
    results = run_both_ways(checkout, baseline=args.baseline)
    ok = True
    for name, (counts, output) in results.items():
        print(f"Channels {TAG} suite, {name}: {counts}")
        if counts.passed != counts.collected or not counts.collected:
            ok = False
            print(output[-6000:], file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
