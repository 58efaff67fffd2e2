"""A third-party Channels library's own suite passes on narrows, its code unchanged."""

from __future__ import annotations

import pytest

from tests.compat import library_suite
from tests.compat.suites import IN_CI

pytestmark = pytest.mark.slow


def test_djangochannelsrestframework_suite_on_narrows() -> None:
    checkout = library_suite.find_checkout()
    if checkout is None:
        if IN_CI:
            pytest.fail(library_suite.HOW_TO_GET_IT)
        pytest.skip(library_suite.HOW_TO_GET_IT)
    ((name, (counts, output)),) = library_suite.run(checkout, baseline=False).items()
    assert counts.collected == 52, f"{name}: {counts}\n{output[-4000:]}"
    assert counts.passed == 52, f"{name}: {counts}\n{output[-4000:]}"
