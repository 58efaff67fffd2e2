"""channels_redis' own test suite (from its PyPI sdist) run against narrows' Redis layer.

Three ways: on channels_redis itself (the baseline), renamed with ``narrows migrate``, and
unchanged through ``narrows.install_as_channels()``. The suite expects Redis on
``localhost:6379`` and a Sentinel on ``localhost:26379`` (master "sentinel", password
"channels_redis") and names those addresses in its test modules; each run gets them in a
private network namespace (``unshare --net``), so it never meets another Redis on this
machine and its tests are run as they are, unedited.

    python -m tests.layers.channels_redis_suite [--baseline] [--ways renamed,installed]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.compat.suites import (
    INSTALL_AS_CHANNELS,
    ROOT,
    at_once,
    migrate_tree,
    pypi_sdist,
    venv,
)

SDIST = "channels_redis==4.3.0"
TEST_REQUIREMENTS = ["pytest", "pytest-asyncio", "pytest-timeout", "async-timeout"]
WAYS = ("baseline", "renamed", "installed")
# Tests that reach into channels_redis' private objects (the per-event-loop layers of its
# pub/sub layer and their shards); narrows has no such objects. docs/migrating.md lists
# them.
PRIVATE = {
    "test_pubsub.py::test_loop_instance_channel_layer_reference": "_get_layer()",
    "test_pubsub.py::test_multi_event_loop_garbage_collection": "_layers",
    "test_pubsub.py::test_auto_reconnect": "_shards[0]._redis",
    "test_pubsub_sentinel.py::test_loop_instance_channel_layer_reference": "_get_layer()",
    "test_pubsub_sentinel.py::test_multi_event_loop_garbage_collection": "_layers",
    "test_pubsub_sentinel.py::test_auto_reconnect": "_shards[0]._redis",
}
SENTINEL_CONF = """\
port 26379
bind 127.0.0.1 ::1
dir {dir}
requirepass channels_redis
sentinel monitor sentinel 127.0.0.1 6379 1
sentinel down-after-milliseconds sentinel 5000
"""


@dataclass
class Outcome:
    """Per test id: passed (xpasses included), failed, error, skipped or xfailed."""

    tests: dict[str, str] = field(default_factory=dict)
    output: str = ""
    seconds: float = 0.0

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.tests.values())

    def unexpected(self) -> dict[str, str]:
        """Tests that neither passed nor failed as channels_redis itself expects
        (xfail), leaving out the private-name ones."""
        fine = {"passed", "xfailed"}
        return {
            test: result
            for test, result in self.tests.items()
            if result not in fine and _file_and_name(test) not in PRIVATE
        }

    def summary(self) -> str:
        counts = self.counts
        order = ["passed", "xfailed", "failed", "error", "skipped"]
        parts = [f"{counts[kind]} {kind}" for kind in order if counts[kind]]
        return f"{len(self.tests)} tests: " + ", ".join(parts) + f" ({self.seconds:.0f} s)"


def _file_and_name(test: str) -> str:
    """``test_pubsub.py::test_x[param]`` -> ``test_pubsub.py::test_x``."""
    return test.split("[")[0]


def namespace_problem() -> str | None:
    """Why a private network namespace cannot be made here, or None."""
    for program in ("unshare", "ip", "redis-server", "redis-sentinel"):
        if shutil.which(program) is None:
            return f"{program} is not installed"
    probe = subprocess.run(
        ["unshare", "--net", "ip", "link", "set", "lo", "up"], capture_output=True, text=True
    )
    if probe.returncode:
        return f"unshare --net is not permitted here: {probe.stderr.strip()}"
    return None


def prepare(way: str, destination: Path) -> None:
    """The sdist's tests and pytest config in ``destination``, renamed for "renamed"."""
    sdist = pypi_sdist(SDIST)
    shutil.copytree(sdist / "tests", destination / "tests")
    shutil.copy(sdist / "setup.cfg", destination / "setup.cfg")
    if way == "renamed":
        migrate_tree(destination / "tests")


def interpreter(way: str) -> Path:
    if way == "baseline":
        requirements = [SDIST, "cryptography", *TEST_REQUIREMENTS]
        return venv("channels-redis", requirements, with_narrows=False)
    return Path(sys.executable)  # narrows' test venv: pytest, pytest-asyncio, async-timeout


def run(way: str, timeout: float = 900) -> Outcome:
    """One way, in a network namespace of its own; the per-test outcomes."""
    python = interpreter(way)
    with tempfile.TemporaryDirectory(prefix=f"narrows-channels-redis-{way}-") as tmp:
        work = Path(tmp)
        prepare(way, work / "suite")
        report = work / "report.xml"
        command = [
            "unshare",
            "--net",
            sys.executable,
            "-m",
            "tests.layers.channels_redis_suite",
            "--inside",
            str(python),
            str(work),
            "installed" if way == "installed" else "",
        ]
        started = time.monotonic()
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env["PYTHONPATH"] = str(ROOT)
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
        outcome = Outcome(output=done.stdout + done.stderr, seconds=time.monotonic() - started)
        if report.exists() and report.stat().st_size:
            outcome.tests = parse_report(report)
        return outcome


def parse_report(report: Path) -> dict[str, str]:
    results: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        test = f"{module}.py::{case.get('name')}"
        kinds = {child.tag: child for child in case}
        if "failure" in kinds:
            results[test] = "failed"
        elif "error" in kinds:
            results[test] = "error"
        elif "skipped" in kinds:
            skipped = kinds["skipped"]
            results[test] = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
        else:  # JUnit XML does not tell an unexpected pass (xpass) from a pass
            results[test] = "passed"
    return results


def inside(python: str, work: Path, prelude: str) -> int:
    """In the new network namespace: loopback up, Redis and Sentinel at the addresses
    the suite names, then pytest."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    data = work / "redis"
    data.mkdir()
    (data / "sentinel.conf").write_text(SENTINEL_CONF.format(dir=data))
    servers = [
        subprocess.Popen(
            [
                *("redis-server", "--port", "6379", "--bind", "127.0.0.1 ::1"),
                *("--save", "", "--appendonly", "no", "--dir", str(data)),
            ],
            stdout=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            ["redis-sentinel", str(data / "sentinel.conf")], stdout=subprocess.DEVNULL
        ),
    ]
    try:
        _wait_for_sentinel()
        code = "import sys, pytest\n"
        if prelude:
            code += INSTALL_AS_CHANNELS + "\n"
        code += "sys.exit(pytest.main(sys.argv[1:]))\n"
        args = ["-p", "no:cacheprovider", "-q", f"--junitxml={work / 'report.xml'}", "tests"]
        return subprocess.run(
            [python, "-c", code, *args], cwd=work / "suite", env=_suite_env()
        ).returncode
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)


def _suite_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "PYTHONPATH"}}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _wait_for_sentinel() -> None:
    deadline = time.monotonic() + 20
    command = ["redis-cli", "-p", "26379", "-a", "channels_redis", "--no-auth-warning"]
    while True:
        answer = subprocess.run(
            [*command, "sentinel", "get-master-addr-by-name", "sentinel"],
            capture_output=True,
            text=True,
        )
        if "127.0.0.1" in answer.stdout:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"Sentinel did not find its master: {answer.stdout}")
        time.sleep(0.1)


def run_ways(ways: Sequence[str]) -> dict[str, Outcome]:
    """The ways at once (each in its own namespace; most of the suite's time is sleeps)."""
    pypi_sdist(SDIST)  # downloaded once, before the runs share it
    return dict(zip(ways, at_once(*(functools.partial(run, way) for way in ways)), strict=True))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ways", default="baseline,renamed,installed")
    parser.add_argument("--inside", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        python, work, prelude = args.inside
        return inside(python, Path(work), prelude)
    problem = namespace_problem()
    if problem:
        print(f"cannot run channels_redis' suite: {problem}", file=sys.stderr)
        return 2
    ok = True
    for way, outcome in run_ways(args.ways.split(",")).items():
        print(f"{SDIST} suite, {way}: {outcome.summary()}")
        for test, result in sorted(outcome.tests.items()):
            if result not in {"passed", "xfailed"}:
                note = PRIVATE.get(_file_and_name(test))
                print(f"  {result}: {test}" + (f" (private: {note})" if note else ""))
        if outcome.unexpected() or not outcome.tests:
            ok = False
            print(outcome.output[-6000:], file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
