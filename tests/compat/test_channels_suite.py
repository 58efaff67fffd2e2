"""Channels' own test suite passes on narrows, migrated and unchanged (80 tests)."""

from __future__ import annotations

import pytest

from tests.compat import channels_suite
from tests.compat.suites import IN_CI

pytestmark = pytest.mark.slow


def test_channels_suite_passes_both_ways() -> None:
    checkout = channels_suite.find_checkout()
    if checkout is None:
        if IN_CI:
            pytest.fail(channels_suite.HOW_TO_GET_IT)
        pytest.skip(channels_suite.HOW_TO_GET_IT)
    results = channels_suite.run_both_ways(checkout)
    for name, (counts, output) in results.items():
        assert counts.collected == 80, f"{name}: {counts}\n{output[-4000:]}"
        assert counts.passed == 80, f"{name}: {counts}\n{output[-4000:]}"
