"""docs/tutorial.md shows the chat demo's real code: verbatim files and true excerpts."""

from __future__ import annotations

import re

import pytest

from tests.helpers import ROOT

TUTORIAL = (ROOT / "docs" / "tutorial.md").read_text()
BLOCK = re.compile(
    r"<!-- (?:excerpt of )?(?P<path>examples/\S+)(?P<verbatim> \(verbatim)?[^>]*-->\n"
    r"```\w*\n(?P<body>.*?)```\n",
    re.S,
)
BLOCKS = list(BLOCK.finditer(TUTORIAL))


def test_the_tutorial_quotes_the_demo() -> None:
    quoted = {m["path"] for m in BLOCKS}
    assert {
        "examples/chat/chat/models.py",
        "examples/chat/chat/consumers.py",
        "examples/chat/chat/routing.py",
        "examples/chat/chatsite/asgi.py",
        "examples/chat/chat/tests.py",
        "examples/chat/chat/static/chat/chat.js",
        "examples/chat/chat/templates/chat/room.html",
    } <= quoted


@pytest.mark.parametrize("match", BLOCKS, ids=[m["path"] for m in BLOCKS])
def test_quoted_code_is_the_demo_code(match: re.Match[str]) -> None:
    source = (ROOT / match["path"]).read_text()
    if match["verbatim"]:
        assert match["body"] == source, f"docs/tutorial.md differs from {match['path']}"
    else:
        assert match["body"] in source, f"docs/tutorial.md excerpt not in {match['path']}"
