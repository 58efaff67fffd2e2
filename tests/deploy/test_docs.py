"""docs/deployment.md shows the files in deploy/ verbatim: the ones the other tests run."""

from __future__ import annotations

import re

from tests.helpers import ROOT

INCLUDED = re.compile(r"<!-- (deploy/\S+) \(verbatim[^>]*-->\n```[a-z]*\n(.*?)```", re.S)


def test_every_deploy_file_is_shown_verbatim_in_the_docs() -> None:
    docs = (ROOT / "docs" / "deployment.md").read_text()
    shown = dict(INCLUDED.findall(docs))
    deploy_files = {str(p.relative_to(ROOT)) for p in (ROOT / "deploy").rglob("*") if p.is_file()}
    assert set(shown) == deploy_files
    for path, text in shown.items():
        assert text == (ROOT / path).read_text(), f"docs/deployment.md is out of date for {path}"
