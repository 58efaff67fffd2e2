"""Name rules: any input is either accepted or refused with TypeError, matching Channels' regex."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from narrows.layers.names import (
    non_local_name,
    require_valid_channel_name,
    require_valid_group_name,
)

CHANNELS_CHANNEL_RE = re.compile(r"^[a-zA-Z\d\-_.]+(\![\d\w\-_.]*)?$")
CHANNELS_GROUP_RE = re.compile(r"^[a-zA-Z\d\-_.]+$")
names = st.one_of(
    st.text(alphabet="abcXYZ019-_.!$ é", max_size=120),
    st.text(max_size=30),
    st.binary(max_size=10),
    st.integers(),
    st.none(),
)


def channels_accepts(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and len(value) < 100 and bool(pattern.match(value))


@given(names)
def test_channel_names_follow_channels_rules(value: object) -> None:
    expected = channels_accepts(CHANNELS_CHANNEL_RE, value) and value.isascii()  # type: ignore[union-attr]
    try:
        require_valid_channel_name(value)
    except TypeError as exc:
        assert not expected
        assert str(exc).startswith("Channel name must be a valid unicode string")
    else:
        assert expected


@given(names)
def test_group_names_follow_channels_rules(value: object) -> None:
    expected = channels_accepts(CHANNELS_GROUP_RE, value)
    try:
        require_valid_group_name(value)
    except TypeError as exc:
        assert not expected
        assert str(exc).startswith("Group name must be a valid unicode string")
    else:
        assert expected


def test_receive_single_needs_the_name_to_end_at_the_bang() -> None:
    with pytest.raises(TypeError, match="must end at the !"):
        require_valid_channel_name("specific.abc!def", receive=True)
    assert require_valid_channel_name("specific.abc!", receive=True)


def test_non_local_name() -> None:
    assert non_local_name("specific.abc!def") == "specific.abc!"
    assert non_local_name("plain") == "plain"
