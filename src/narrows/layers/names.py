"""Channel and group name rules and messages: Channels', plus the bad name itself."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

MAX_NAME_LENGTH = 100

CHANNEL_NAME_RE = re.compile(r"^[a-zA-Z\d\-_.]+(![\d\w\-_.]*)?$", re.ASCII)
GROUP_NAME_RE = re.compile(r"^[a-zA-Z\d\-_.]+$", re.ASCII)

# Channels' own wording (``BaseChannelLayer.invalid_name_error``): code and tests match on it.
INVALID_NAME_ERROR = (
    "{} name must be a valid unicode string "
    f"with length < {MAX_NAME_LENGTH} "
    "containing only ASCII alphanumerics, hyphens, underscores, or periods."
)


def _describe(value: Any) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= 120 else value[:117] + "..."
        return f"{shown!r} ({len(value)} characters)"
    return f"{type(value).__name__} {value!r:.80}"


@lru_cache(maxsize=4096)
def _channel_name_ok(name: str) -> bool:
    # Cached: consumers receive on the same few names over and over.
    return len(name) < MAX_NAME_LENGTH and CHANNEL_NAME_RE.match(name) is not None


def require_valid_channel_name(name: Any, receive: bool = False) -> str:
    """Return ``name`` if it is a valid channel name; raise ``TypeError`` saying why not.

    ``TypeError`` (not ``ValueError``) because that is what Channels raises and what
    existing code catches.
    """
    if not isinstance(name, str) or not _channel_name_ok(name):
        raise TypeError(
            f"{INVALID_NAME_ERROR.format('Channel')} A '!' may end the name or precede a "
            f"process-local suffix. Got {_describe(name)}."
        )
    if receive and "!" in name and not name.endswith("!"):
        raise TypeError(f"Specific channel names in receive() must end at the !; got {name!r}")
    return name


@lru_cache(maxsize=4096)
def _group_name_ok(name: str) -> bool:
    return len(name) < MAX_NAME_LENGTH and GROUP_NAME_RE.match(name) is not None


def require_valid_group_name(name: Any) -> str:
    """Return ``name`` if it is a valid group name; raise ``TypeError`` saying why not."""
    if not isinstance(name, str) or not _group_name_ok(name):
        raise TypeError(f"{INVALID_NAME_ERROR.format('Group')} Got {_describe(name)}.")
    return name


def require_message(message: Any) -> dict[str, Any]:
    """A channel-layer message is a dict that does not use the reserved ``__asgi_channel__`` key."""
    if not isinstance(message, dict):
        raise TypeError(f"Expected a message dict, got {type(message).__name__}")
    if "__asgi_channel__" in message:
        raise ValueError("Expected a message without the reserved key '__asgi_channel__'")
    return message


def non_local_name(name: str) -> str:
    """``specific.abc!xyz`` -> ``specific.abc!``; names without ``!`` are returned as they are."""
    index = name.find("!")
    return name if index < 0 else name[: index + 1]
