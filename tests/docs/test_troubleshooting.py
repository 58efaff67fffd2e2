"""Every message docs/troubleshooting.md quotes is one that narrows, Django or pip prints.

A heading in backticks is a message; the parts in ``<...>`` vary. Each literal part must
occur in a string literal of the package that prints it (with that literal's own
placeholders, ``%s`` or f-string fields, as the varying parts), or be an OS error text or
an HTTP status line.
"""

from __future__ import annotations

import ast
import http
import os
import re
from functools import cache
from pathlib import Path

import pip

import django
from tests.helpers import ROOT

PAGE = ROOT / "docs" / "troubleshooting.md"
HEADING = re.compile(r"^#+ `(?P<message>[^`]+)`", re.M)
VARYING = re.compile(r"<[^<>]*>")
PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[sdrif]|\x00")
SOURCES = [
    ROOT / "src" / "narrows",
    ROOT / "setup.py",  # what an install that cannot compile says
    *(Path(django.__file__).parent / part for part in ("conf", "apps", "core", "utils")),
    Path(pip.__file__).parent / "_internal",
]


def literal_parts(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return PLACEHOLDER.split(node.value)
    if isinstance(node, ast.JoinedStr):  # f-strings: each field varies
        text = "".join(v.value if isinstance(v, ast.Constant) else "\x00" for v in node.values)
        return PLACEHOLDER.split(str(text))
    return []


@cache
def corpus() -> frozenset[str]:
    parts: set[str] = {os.strerror(n) for n in range(1, 134)}
    parts |= {f"{status.value} {status.phrase}" for status in http.HTTPStatus}
    for source in SOURCES:
        for path in source.rglob("*.py") if source.is_dir() else [source]:
            try:
                tree = ast.parse(path.read_bytes())
            except SyntaxError:  # project templates and the like
                continue
            for node in ast.walk(tree):
                parts.update(literal_parts(node))
    return frozenset(part for part in parts if part.strip())


MESSAGES = [m["message"].removeprefix("ERROR: ") for m in HEADING.finditer(PAGE.read_text())]


def known(fragment: str, texts: frozenset[str]) -> bool:
    return any(fragment in text for text in texts)


def test_the_page_quotes_messages() -> None:
    assert len(MESSAGES) >= 20


def test_every_quoted_message_is_printed_by_someone() -> None:
    texts = corpus()
    unknown = []
    for message in MESSAGES:
        for fragment in VARYING.split(message):
            # "<literal>: <strerror>" is two parts of one message
            for piece in fragment.split(": ") if not known(fragment, texts) else [fragment]:
                if len(piece.strip()) >= 3 and not known(piece.strip(), texts):
                    unknown.append((message, piece))
    assert not unknown, f"no such message text in narrows, Django or pip: {unknown}"
