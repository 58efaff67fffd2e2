"""Running other projects' test suites against narrows: venvs, sources, counts.

Third-party suites run in their own virtualenvs under ``.cache/compat/`` (gitignored,
rebuilt when their requirements or pyproject.toml change) so that what they install
(Daphne, a library's own test dependencies) never leaks into narrows' own ``.venv``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("NARROWS_COMPAT_CACHE", ROOT / ".cache" / "compat"))
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@dataclass(frozen=True)
class Counts:
    """What one pytest run collected and how it ended (from its JUnit XML report)."""

    collected: int
    passed: int
    failed: int
    errors: int
    skipped: int

    def __str__(self) -> str:
        return (
            f"{self.passed}/{self.collected} passed, {self.failed} failed, "
            f"{self.errors} errors, {self.skipped} skipped"
        )


def venv(
    name: str,
    requirements: Sequence[str],
    *,
    with_narrows: bool = True,
    without_dependencies: Sequence[str] = (),
) -> Path:
    """The python of a cached virtualenv with ``requirements`` (and this checkout of
    narrows, editable, unless ``with_narrows`` is False). ``without_dependencies`` are
    installed with ``--no-deps`` (a library that would pull in the real Channels)."""
    wanted = "\n".join(
        [*requirements, *without_dependencies, f"narrows={with_narrows}", "no-deps:"]
    )
    stamp_value = hashlib.sha256(
        (wanted + (ROOT / "pyproject.toml").read_text()).encode()
    ).hexdigest()
    home = CACHE / name
    python = home / "bin" / "python"
    stamp = home / ".requirements"
    if python.exists() and stamp.exists() and stamp.read_text() == stamp_value:
        return python
    if home.exists():
        shutil.rmtree(home)
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    packages = list(requirements) + (["-e", f"{ROOT}[redis]"] if with_narrows else [])
    _quiet([*install, *packages])
    if without_dependencies:
        _quiet([*install, "--no-deps", *without_dependencies])
    stamp.write_text(stamp_value)
    return python


def at_once(*calls: Callable[[], T]) -> list[T]:
    """Each call's result, in order, the calls run side by side in threads.

    For independent runs of a suite (each its own subprocess, tree and venv): one run per
    core instead of one after another; the first exception raised is raised here."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


def _quiet(command: Sequence[str]) -> None:
    """Run ``command``; its output is shown only if it fails."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def pypi_sdist(requirement: str) -> Path:
    """Download (once) and unpack the sdist of ``requirement`` ("name==version")."""
    name = requirement.replace("==", "-")
    target = CACHE / "sdists" / name
    if target.exists():
        return target
    downloads = CACHE / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    _quiet(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--no-binary",
            requirement.split("==")[0],
            "--disable-pip-version-check",
            "-d",
            str(downloads),
            requirement,
        ]
    )
    project = requirement.split("==")[0].lower().replace("-", "_")
    archive = next(
        path
        for path in sorted(downloads.iterdir())
        if path.name.lower().replace("-", "_").startswith(project)
        and path.name.endswith(".tar.gz")
        and requirement.split("==")[-1] in path.name
    )
    (CACHE / "sdists").mkdir(parents=True, exist_ok=True)
    unpack = Path(tempfile.mkdtemp(dir=CACHE / "sdists", prefix=".unpack-"))
    with tarfile.open(archive) as tar:
        tar.extractall(unpack, filter="data")
    (top,) = list(unpack.iterdir())
    top.rename(target)
    unpack.rmdir()
    return target


def run_pytest(
    python: Path,
    cwd: Path,
    args: Sequence[str],
    *,
    prelude: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 900,
) -> tuple[Counts, str]:
    """Run pytest with ``python`` in ``cwd``; ``prelude`` is Python run before pytest
    starts (``narrows.install_as_channels()``). Returns the counts and the output."""
    report = Path(tempfile.mkstemp(suffix=".xml", prefix="narrows-compat-")[1])
    code = "import sys, pytest\n"
    if prelude:
        code += prelude + "\n"
    code += "sys.exit(pytest.main(sys.argv[1:]))\n"
    full_env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    full_env.update(env or {})
    full_env["PYTHONDONTWRITEBYTECODE"] = "1"
    try:
        done = subprocess.run(
            [str(python), "-c", code, "-p", "no:cacheprovider", f"--junitxml={report}", *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output = done.stdout + done.stderr
        counts = parse_junit(report) if report.stat().st_size else Counts(0, 0, 0, 0, 0)
    finally:
        report.unlink(missing_ok=True)
    return counts, output


def parse_junit(report: Path) -> Counts:
    root = ET.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) for s in suites)
    errors = sum(int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return Counts(total, total - failed - errors - skipped, failed, errors, skipped)


def migrate_tree(path: Path) -> str:
    """Run ``narrows migrate --write`` on ``path`` with narrows' own interpreter."""
    done = subprocess.run(
        [sys.executable, "-m", "narrows", "migrate", "--write", "-q", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return done.stderr


INSTALL_AS_CHANNELS = "import narrows; narrows.install_as_channels()"
