"""``narrows migrate`` on strawberry-graphql: the same Channels tests run, and end the same,
before (on Channels) and after (migrated, on narrows)."""

from __future__ import annotations

import pytest

from tests.compat import codebase_suite
from tests.compat.suites import IN_CI

pytestmark = pytest.mark.slow


def test_migrating_strawberry_skips_or_deselects_nothing() -> None:
    checkout = codebase_suite.find_checkout()
    if checkout is None:
        if IN_CI:
            pytest.fail(codebase_suite.HOW_TO_GET_IT)
        pytest.skip(codebase_suite.HOW_TO_GET_IT)
    before, after, report = codebase_suite.before_and_after(checkout)
    assert "7 of " in report, report  # strawberry/channels/*, its tests and settings
    assert before.selected > 500, before.output[-3000:]
    assert after.counts == before.counts, (
        f"before: {before}\nafter: {after}\n{after.output[-4000:]}"
    )
