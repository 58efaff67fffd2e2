"""The channel-layer contract (``ChannelLayer``) and the base class the layers share."""

from __future__ import annotations

import fnmatch
import logging
import re
import warnings
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from narrows.layers import names

logger = logging.getLogger("narrows.layers")

CapacityPattern = str | re.Pattern[str]


@runtime_checkable
class ChannelLayer(Protocol):
    """What consumers, workers and ``get_channel_layer()`` callers rely on."""

    extensions: list[str]

    async def send(self, channel: str, message: dict[str, Any]) -> None: ...

    async def receive(self, channel: str) -> dict[str, Any]: ...

    async def new_channel(self, prefix: str = "specific.") -> str: ...

    async def group_add(self, group: str, channel: str) -> None: ...

    async def group_discard(self, group: str, channel: str) -> None: ...

    async def group_send(self, group: str, message: dict[str, Any]) -> None: ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


def compile_capacities(
    channel_capacity: Mapping[CapacityPattern, int] | Iterable[tuple[CapacityPattern, int]] | None,
) -> list[tuple[re.Pattern[str], int]]:
    """Turn ``{"http.request": 200, "websocket.*": 20, re.compile(...): 5}`` into regexes.

    Strings are globs (``fnmatch``); compiled regexes are used as they are. The first
    match wins, in the order given.
    """
    if channel_capacity is None:
        return []
    items = channel_capacity.items() if isinstance(channel_capacity, Mapping) else channel_capacity
    compiled: list[tuple[re.Pattern[str], int]] = []
    for pattern, capacity in items:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(
                f"Expected channel_capacity[{pattern!r}] to be a positive int, got {capacity!r}"
            )
        if isinstance(pattern, re.Pattern):
            compiled.append((pattern, capacity))
        elif isinstance(pattern, str):
            compiled.append((re.compile(fnmatch.translate(pattern)), capacity))
        else:
            raise TypeError(
                f"Expected a glob str or compiled regex as channel_capacity key, "
                f"got {type(pattern).__name__}"
            )
    return compiled


def live_layers() -> list[BaseChannelLayer]:
    """The layers of this process that still exist (the metrics read their counters)."""
    return list(_LIVE_LAYERS)


class BaseChannelLayer:
    """Settings and checks every layer shares: capacities, expiry, names, drop counters.

    ``dropped`` counts messages that were not delivered, by reason (``"full"``: a send or
    group_send found the channel at capacity; ``"expired"``: nobody received the message
    within ``expiry`` seconds; ``"evicted"``: a process-local buffer overflowed). Every drop
    is also logged on the ``narrows.layers`` logger with the channel (and group) name.
    ``messages_sent`` counts ``send`` calls that queued a message and ``group_send`` calls,
    ``messages_received`` the messages ``receive`` returned (``--metrics-bind`` exports them).
    """

    MAX_NAME_LENGTH: ClassVar[int] = names.MAX_NAME_LENGTH
    extensions: ClassVar[list[str]] = ["groups", "flush"]

    def __init__(
        self,
        expiry: float = 60,
        capacity: int = 100,
        channel_capacity: Mapping[CapacityPattern, int]
        | Iterable[tuple[CapacityPattern, int]]
        | None = None,
        group_expiry: float = 86400,
    ) -> None:
        if expiry <= 0:
            raise ValueError(f"Expected expiry > 0 seconds, got {expiry!r}")
        if group_expiry <= 0:
            raise ValueError(f"Expected group_expiry > 0 seconds, got {group_expiry!r}")
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"Expected capacity to be a positive int, got {capacity!r}")
        self.expiry = expiry
        self.group_expiry = group_expiry
        self.capacity = capacity
        self.channel_capacity = compile_capacities(channel_capacity)
        self.dropped: Counter[str] = Counter()
        self.messages_sent = 0
        self.messages_received = 0
        _LIVE_LAYERS.add(self)

    def compile_capacities(
        self, channel_capacity: Mapping[CapacityPattern, int] | None
    ) -> list[tuple[re.Pattern[str], int]]:
        return compile_capacities(channel_capacity)

    def get_capacity(self, channel: str) -> int:
        """Capacity of ``channel``: the first matching ``channel_capacity`` pattern, else
        ``capacity``."""
        for pattern, capacity in self.channel_capacity:
            if pattern.match(channel):
                return capacity
        return self.capacity

    # Names: Channels' attributes and methods, which third-party layers call and override.

    channel_name_regex: ClassVar[re.Pattern[str]] = names.CHANNEL_NAME_RE
    group_name_regex: ClassVar[re.Pattern[str]] = names.GROUP_NAME_RE
    invalid_name_error: ClassVar[str] = names.INVALID_NAME_ERROR

    def require_valid_channel_name(self, name: str, receive: bool = False) -> bool:
        names.require_valid_channel_name(name, receive=receive)
        return True

    def require_valid_group_name(self, name: str) -> bool:
        names.require_valid_group_name(name)
        return True

    def valid_channel_names(self, names_: list[str], receive: bool = False) -> bool:
        if not isinstance(names_, list) or not names_:
            raise TypeError(f"Expected a non-empty list of channel names, got {names_!r:.80}")
        for channel in names_:
            self.require_valid_channel_name(channel, receive=receive)
        return True

    def valid_channel_name(self, channel_name: str, receive: bool = False) -> bool:
        """Deprecated in Channels 4.2: use ``require_valid_channel_name``."""
        warnings.warn(
            "valid_channel_name is deprecated, use require_valid_channel_name instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.require_valid_channel_name(channel_name, receive=receive)

    def valid_group_name(self, group_name: str) -> bool:
        """Deprecated in Channels 4.2: use ``require_valid_group_name``."""
        warnings.warn(
            "valid_group_name is deprecated, use require_valid_group_name instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.require_valid_group_name(group_name)

    def match_type_and_length(self, name: object) -> bool:
        return isinstance(name, str) and len(name) < self.MAX_NAME_LENGTH

    def non_local_name(self, name: str) -> str:
        return names.non_local_name(name)

    # Drops are counted and logged, never silent.

    def _record_drop(
        self, reason: str, channels: list[str], group: str | None = None, count: int = 1
    ) -> None:
        self.dropped[reason] += count
        shown = ", ".join(channels[:10])
        if len(channels) > 10:
            shown += f" and {len(channels) - 10} more"
        where = f" sent to group {group!r}" if group else ""
        logger.warning(
            "%s: dropped %d message(s)%s (%s) for channel(s) %s",
            type(self).__name__,
            count,
            where,
            reason,
            shown,
        )

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement send()")

    async def receive(self, channel: str) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} does not implement receive()")

    async def new_channel(self, prefix: str = "specific.") -> str:
        raise NotImplementedError(f"{type(self).__name__} does not implement new_channel()")

    async def group_add(self, group: str, channel: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement group_add()")

    async def group_discard(self, group: str, channel: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement group_discard()")

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement group_send()")

    async def flush(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement flush()")

    async def close(self) -> None:
        """Release connections and background tasks; the default has none."""


_LIVE_LAYERS: weakref.WeakSet[BaseChannelLayer] = weakref.WeakSet()
