"""``get_channel_layer()`` is typed with the channel-layer contract, not ``Any``."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

pytestmark = pytest.mark.slow


def test_get_channel_layer_returns_the_channel_layer_protocol(tmp_path: Path) -> None:
    snippet = tmp_path / "uses_layer.py"
    snippet.write_text(
        "from narrows.layers import get_channel_layer\n"
        "layer = get_channel_layer()\n"
        "reveal_type(layer)\n"
        "if layer is not None:\n"
        "    layer.group_sendd('g', {})\n"
    )
    out, _, _ = api.run(["--strict", "--no-incremental", "--follow-imports=silent", str(snippet)])
    assert 'Revealed type is "narrows.layers.base.ChannelLayer | None"' in out, out
    assert '"ChannelLayer" has no attribute "group_sendd"' in out, out
