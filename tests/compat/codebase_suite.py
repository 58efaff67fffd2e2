"""``narrows migrate`` on a large third-party code base: strawberry-graphql's Channels
integration (its library code and its tests), compared before and after.

Before: the code base unchanged, on the real Channels. After: the whole tree migrated with
``narrows migrate --write``, on narrows with Channels absent. The same tests must be
selected (``-m channels``, as strawberry's CI runs them), and none newly skipped or
deselected: a rename that touched pytest markers, the ``"channels"`` client names or
``importorskip("channels")`` would show up here.

    python -m tests.compat.codebase_suite [CHECKOUT]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.compat.suites import at_once, migrate_tree, venv

TAG = "0.324.0"
ENV_VAR = "NARROWS_STRAWBERRY_CHECKOUT"
MIRROR = Path("/work/.mirror/strawberry-graphql+strawberry/repo")
HOW_TO_GET_IT = (
    "strawberry-graphql's tests need its repository: git clone --branch "
    f"{TAG} https://github.com/strawberry-graphql/strawberry and set {ENV_VAR}"
)
#: strawberry's dev dependencies that its Channels tests use (pyproject.toml, nox).
TEST_REQUIREMENTS = [
    f"strawberry-graphql=={TAG}",
    "pytest",
    "pytest-asyncio",
    "pytest-mock",
    "pytest-snapshot",
    "pytest-emoji",
    "pytest-django",
    "inline-snapshot",
    "freezegun",
    "python-multipart",
    "urllib3",
    "Django>=5.2",
]
PYTEST_ARGS = ["-q", "-m", "channels", "tests/channels", "tests/http", "tests/websockets"]
OUTCOMES = ("passed", "failed", "skipped", "deselected", "xfailed", "xpassed", "errors", "error")


@dataclass(frozen=True)
class Outcome:
    counts: dict[str, int]
    output: str

    @property
    def selected(self) -> int:
        return sum(n for name, n in self.counts.items() if name != "deselected")

    def __str__(self) -> str:
        shown = ", ".join(f"{n} {name}" for name, n in sorted(self.counts.items()))
        return f"{self.selected} selected: {shown}"


def find_checkout() -> Path | None:
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured)
    return MIRROR if MIRROR.exists() else None


def export_tree(checkout: Path, destination: Path) -> None:
    destination.mkdir(parents=True)
    if (checkout / "strawberry").is_dir():
        subprocess.run(["cp", "-r", f"{checkout}/.", str(destination)], check=True)
        return
    archive = subprocess.run(
        ["git", f"--git-dir={checkout}", "archive", TAG], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive.stdout, check=True)


def summary_counts(output: str) -> dict[str, int]:
    """pytest's closing line (``6 failed, 453 passed, 44 skipped ...``) as a dict."""
    last = [line for line in output.splitlines() if " in " in line and "passed" in line]
    counts: dict[str, int] = {}
    for number, name in re.findall(r"(\d+) (\w+)", last[-1] if last else ""):
        if name in OUTCOMES:
            counts["errors" if name == "error" else name] = int(number)
    return counts


def run_tree(python: Path, tree: Path) -> Outcome:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", *PYTEST_ARGS],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = done.stdout + done.stderr
    return Outcome(summary_counts(output), output)


def before_and_after(checkout: Path) -> tuple[Outcome, Outcome, str]:
    """Both runs at once: independent trees and venvs."""
    on_channels, on_narrows = at_once(
        lambda: venv(
            "strawberry-channels",
            [*TEST_REQUIREMENTS, "channels[daphne]==4.3.2"],
            with_narrows=False,
        ),
        lambda: venv("strawberry-narrows", TEST_REQUIREMENTS),
    )
    with tempfile.TemporaryDirectory(prefix="narrows-strawberry-") as tmp:
        before_tree, after_tree = Path(tmp, "before"), Path(tmp, "after")
        export_tree(checkout, before_tree)
        export_tree(checkout, after_tree)
        report = migrate_tree(after_tree)
        before, after = at_once(
            lambda: run_tree(on_channels, before_tree), lambda: run_tree(on_narrows, after_tree)
        )
        return before, after, report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, nargs="?")
    args = parser.parse_args(argv)
    checkout = args.checkout or find_checkout()
    if checkout is None:
        print(HOW_TO_GET_IT, file=sys.stderr)
        return 2
    before, after, report = before_and_after(checkout)
    print(report.strip().splitlines()[-1])
    print(f"strawberry-graphql {TAG}, unchanged, on Channels 4.3.2: {before}")
    print(f"strawberry-graphql {TAG}, after narrows migrate, on narrows: {after}")
    same = before.selected == after.selected and all(
        before.counts.get(k, 0) == after.counts.get(k, 0) for k in ("skipped", "deselected")
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
