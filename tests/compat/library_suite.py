"""A third-party Channels library's own test suite on narrows, unchanged:
djangochannelsrestframework (REST-style consumers, model observers, permissions).

The library comes from PyPI; its tests (the PyPI sdist leaves out their conftest and
models) from the repository at the same release. It runs twice: on the real Channels, and
on narrows through ``narrows.install_as_channels()`` with the library's code unchanged.

    python -m tests.compat.library_suite [CHECKOUT]
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.compat.suites import INSTALL_AS_CHANNELS, Counts, at_once, run_pytest, venv

LIBRARY = "djangochannelsrestframework==1.3.0"
TAG = "v1.3.0"
ENV_VAR = "NARROWS_DCRF_CHECKOUT"
MIRROR = Path("/work/.mirror/NilCoalescing+djangochannelsrestframework/repo")
HOW_TO_GET_IT = (
    "djangochannelsrestframework's tests need its repository: git clone --branch "
    f"{TAG} https://github.com/NilCoalescing/djangochannelsrestframework and set {ENV_VAR}"
)
TEST_REQUIREMENTS = ["djangorestframework>=3.15.2", "pytest", "pytest-django", "pytest-asyncio"]


def find_checkout() -> Path | None:
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured)
    return MIRROR if MIRROR.exists() else None


def export_tests(checkout: Path, destination: Path) -> None:
    destination.mkdir(parents=True)
    if (checkout / "tests").is_dir():
        subprocess.run(["cp", "-r", str(checkout / "tests"), str(destination)], check=True)
        subprocess.run(["cp", str(checkout / "setup.cfg"), str(destination)], check=True)
        return
    archive = subprocess.run(
        ["git", f"--git-dir={checkout}", "archive", TAG, "tests", "setup.cfg"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive.stdout, check=True)


def run(checkout: Path, *, baseline: bool = True) -> dict[str, tuple[Counts, str]]:
    """On narrows (and, with ``baseline``, on the real Channels beside it, at once)."""
    runs = []
    if baseline:
        requirements = [LIBRARY, "channels[daphne]==4.3.2", *TEST_REQUIREMENTS]
        runs.append(
            ("on Channels 4.3.2", venv("dcrf-channels", requirements, with_narrows=False), None)
        )
    # --no-deps: the library's requirements name the real Channels.
    on_narrows = venv("dcrf-narrows", TEST_REQUIREMENTS, without_dependencies=[LIBRARY])
    runs.append(("on narrows, unchanged + install_as_channels()", on_narrows, INSTALL_AS_CHANNELS))
    with tempfile.TemporaryDirectory(prefix="narrows-dcrf-") as tmp:
        calls = {}
        for name, python, prelude in runs:
            where = Path(tmp, name.split(",")[0].replace(" ", "-"))
            export_tests(checkout, where)
            calls[name] = functools.partial(
                run_pytest, python, where, ["-q", "tests"], prelude=prelude
            )
        return dict(zip(calls, at_once(*calls.values()), strict=True))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, nargs="?")
    args = parser.parse_args(argv)
    checkout = args.checkout or find_checkout()
    if checkout is None:
        print(HOW_TO_GET_IT, file=sys.stderr)
        return 2
    ok = True
    for name, (counts, output) in run(checkout).items():
        print(f"{LIBRARY} suite, {name}: {counts}")
        if counts.passed != counts.collected or not counts.collected:
            ok = False
            print(output[-6000:], file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
