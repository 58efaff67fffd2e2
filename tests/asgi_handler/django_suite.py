"""Django's own handler tests, from its PyPI sdist, against Django's handler and narrows'.

For one Django series ("4.2", "5.2", "6.1"): the newest sdist of the series is downloaded
once (``pip download --no-deps --no-binary :all:``) into ``.cache/django-suite/``
(gitignored), unpacked there, and a venv with that exact Django (plus narrows' runtime
dependencies; narrows itself comes from ``src/`` on ``PYTHONPATH``) is made beside it, keyed
by version, with the running Python, or a newer one where the series needs it (Django 6
needs 3.12). :func:`run` then calls ``tests/runtests.py`` through ``django_runner.py``.

    .venv/bin/python -m tests.asgi_handler.django_suite 4.2 asgi handlers   # by hand
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("NARROWS_DJANGO_SUITE_CACHE", ROOT / ".cache" / "django-suite"))
RUNNER = Path(__file__).with_name("django_runner.py")
#: narrows' runtime dependencies, as pyproject lists them (Django comes pinned).
RUNTIME_DEPS = ["asgiref>=3.8", "httptools>=0.6", "uvloop>=0.19", "msgpack>=1.0"]
#: The oldest Python of each Django series that needs a newer one than narrows' 3.11.
SERIES_PYTHON = {"6.": (3, 12)}
#: Where scripts/test finds the newer interpreters, newest first.
NEWER_PYTHONS = ["3.13.0", "3.12.1"]


class SuiteUnavailable(RuntimeError):
    """The sdist or the venv could not be made (no network, no pip)."""


@dataclasses.dataclass(frozen=True)
class Suite:
    version: str
    tests_dir: Path
    python: Path


@dataclasses.dataclass(frozen=True)
class Result:
    handler: str
    ran: int
    failures: int
    errors: int
    skipped: int
    expected_failures: int
    ok: bool
    seconds: float
    served: str  # narrows' own count of requests per path ("" for Django's handler)
    output: str
    #: names of the tests that failed or errored
    failed: tuple[str, ...] = ()

    @property
    def passed(self) -> int:
        return self.ran - self.failures - self.errors - self.skipped - self.expected_failures

    def summary(self) -> str:
        return (
            f"{self.handler}: ran {self.ran}, passed {self.passed}, failures {self.failures}, "
            f"errors {self.errors}, skipped {self.skipped} ({self.seconds:.0f}s)"
            + (f"; {self.served}" if self.served else "")
        )


def _pip(python: Path | str, *args: str, timeout: float = 600) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise SuiteUnavailable(f"pip {' '.join(args[:3])}... failed: {done.stderr.strip()[-800:]}")


def sdist(series: str) -> Path:
    """The newest ``django-SERIES.*`` sdist, downloaded on first use."""
    sdists = CACHE / "sdists"
    pattern = str(sdists / f"django-{series}.*.tar.gz")
    found = sorted(glob.glob(pattern), key=_version_key)
    if not found:
        sdists.mkdir(parents=True, exist_ok=True)
        _pip(
            sys.executable,
            "download",
            "--no-deps",
            "--ignore-requires-python",  # a series may need a newer Python than this one
            "--no-binary",
            ":all:",
            f"django=={series}.*",
            "-d",
            str(sdists),
        )
        found = sorted(glob.glob(pattern), key=_version_key)
    if not found:
        raise SuiteUnavailable(f"pip download left no {pattern}")
    return Path(found[-1])


def _version_key(path: str) -> tuple[int, ...]:
    match = re.search(r"django-([\d.]+)\.tar\.gz$", path)
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


def interpreter(series: str) -> str:
    """A Python that Django ``series`` runs on: this one, or a newer one as scripts/test
    finds them (pyenv's, else ``python3.N`` on PATH)."""
    needed = next((v for p, v in SERIES_PYTHON.items() if series.startswith(p)), None)
    if needed is None or sys.version_info >= needed:
        return sys.executable
    for version in NEWER_PYTHONS:
        minor = version.rsplit(".", 1)[0]
        if tuple(int(n) for n in minor.split(".")) < needed:
            continue
        for candidate in (f"/root/.pyenv/versions/{version}/bin/python{minor}",
                          shutil.which(f"python{minor}")):  # fmt: skip
            if candidate and os.access(candidate, os.X_OK) and _runs(candidate):
                return candidate
    raise SuiteUnavailable(
        f"Django {series} needs Python {'.'.join(map(str, needed))} or newer; none was found"
    )


def _runs(python: str) -> bool:
    # pyenv's shims exist for every version but fail for one that is not installed
    try:
        return subprocess.run([python, "-c", ""], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def prepare(series: str) -> Suite:
    archive = sdist(series)
    version = archive.name.removeprefix("django-").removesuffix(".tar.gz")
    source = CACHE / f"django-{version}"
    if not (source / "tests" / "runtests.py").exists():
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if "/tests/" in m.name or m.isdir()]
            tar.extractall(CACHE, members=members, filter="data")
    venv = CACHE / f"venv-{version}"
    python = venv / "bin" / "python"
    stamp = venv / ".ready"
    if not stamp.exists():
        python_for_series = interpreter(series)
        subprocess.run([python_for_series, "-m", "venv", "--clear", str(venv)], check=True)
        _pip(python, "install", "-q", f"django=={version}", *RUNTIME_DEPS)
        stamp.write_text(version)
    return Suite(version, source / "tests", python)


def mixed(older: str, newer: str) -> Suite:
    """Django ``older`` with the ``tests/asgi`` of Django ``newer`` in place of its own.

    Django 5 changed what the handler does on ``http.disconnect`` (it cancels the view) and
    its tests check it; narrows behaves the Django 5 way on 4.2 too, and this suite shows it.
    The copy lives in the cache, like the sources it is made from.
    """
    base, donor = prepare(older), prepare(newer)
    tree = CACHE / f"django-{base.version}-with-{donor.version}-asgi"
    if not (tree / "tests" / "runtests.py").exists():
        shutil.rmtree(tree, ignore_errors=True)
        shutil.copytree(base.tests_dir, tree / "tests")
        shutil.rmtree(tree / "tests" / "asgi")
        shutil.copytree(donor.tests_dir / "asgi", tree / "tests" / "asgi")
    return Suite(f"{base.version} + {donor.version}'s tests/asgi", tree / "tests", base.python)


def run(suite: Suite, handler: str, labels: tuple[str, ...] = ("asgi", "handlers")) -> Result:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    started = time.monotonic()
    done = subprocess.run(
        [
            str(suite.python),
            str(RUNNER),
            "--handler",
            handler,
            str(suite.tests_dir),
            *labels,
            "--parallel",
            "1",
            "--noinput",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    output = done.stdout + done.stderr
    ran = re.search(r"^Ran (\d+) tests? in", output, re.M)
    if ran is None:
        raise AssertionError(f"runtests.py with {handler}'s handler did not run:\n{output[-3000:]}")
    status = re.search(r"^(OK|FAILED)(?: \((.*)\))?$", output, re.M)
    counts = dict(re.findall(r"(\w+)=(\d+)", status.group(2) or "")) if status else {}
    served = re.search(r"^narrows\.asgi served: (.*)$", output, re.M)
    return Result(
        handler=handler,
        ran=int(ran.group(1)),
        failures=int(counts.get("failures", 0)),
        errors=int(counts.get("errors", 0)),
        skipped=int(counts.get("skipped", 0)),
        expected_failures=int(counts.get("expected_failures", 0)),
        ok=done.returncode == 0 and status is not None and status.group(1) == "OK",
        seconds=time.monotonic() - started,
        served=served.group(1) if served else "",
        output=output,
        failed=tuple(re.findall(r"^(?:FAIL|ERROR): (\w+) ", output, re.M)),
    )


def main() -> None:
    series, *labels = sys.argv[1:] or ["5.2"]
    suite = prepare(series)
    for handler in ("django", "narrows"):
        result = run(suite, handler, tuple(labels) or ("asgi", "handlers"))
        print(f"Django {suite.version}, {result.summary()}")
        if not result.ok:
            print(result.output[-5000:])


if __name__ == "__main__":
    main()
