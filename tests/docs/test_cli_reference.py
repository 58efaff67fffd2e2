"""docs/cli.md is what scripts/cli-reference generates from the argument parser."""

from __future__ import annotations

import subprocess
import sys

from narrows.server.cli import build_parser
from tests.helpers import ROOT


def test_docs_cli_md_matches_the_parser() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cli-reference"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_flag_is_in_the_reference() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    for action in build_parser()._actions:
        hidden = set(getattr(action, "narrows_aliases", ()))
        for flag in action.option_strings:
            if flag not in hidden and flag not in ("-h", "--help"):
                assert f"`{flag}" in text, flag
