"""How messages are stored in Redis: msgpack envelopes, optionally Fernet-encrypted.

An envelope is the msgpack array ``[deadline, targets, message]``: ``deadline`` is the
Unix time after which the message is dropped unreceived; ``targets`` is ``None`` for a
normal channel, the ``!`` suffix (str) of one process-local channel, or a map for the
receiving process: ``{"group": name}`` (deliver to my channels in that group),
``{"add": name, "channel": suffix, "at": time}`` / ``{"discard": name, "channel":
suffix}`` (another process changed the membership of one of my channels). The message
is packed once per send or group_send and spliced into each envelope.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

import msgpack

Targets = str | dict[str, Any] | None


def _fernet(keys: Sequence[str | bytes] | None) -> Any:
    if not keys:
        return None
    if isinstance(keys, str | bytes):
        raise ValueError(
            "Expected symmetric_encryption_keys to be a list of keys, got a single "
            f"{type(keys).__name__}"
        )
    try:
        from cryptography.fernet import Fernet, MultiFernet
    except ImportError as exc:  # pragma: no cover - cryptography is in narrows[redis]
        raise ValueError(
            "symmetric_encryption_keys needs the 'cryptography' package (pip install "
            "narrows[redis])"
        ) from exc
    # The same key derivation as channels_redis, so existing keys keep working.
    fernets = [
        Fernet(base64.urlsafe_b64encode(hashlib.sha256(_bytes(key)).digest())) for key in keys
    ]
    return MultiFernet(fernets)


def _bytes(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


class Codec:
    def __init__(
        self, symmetric_encryption_keys: Sequence[str | bytes] | None, expiry: float
    ) -> None:
        self._crypter = _fernet(symmetric_encryption_keys)
        self._ttl = int(expiry) + 10

    def pack_message(self, message: dict[str, Any]) -> bytes:
        try:
            packed: bytes = msgpack.packb(message, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(
                f"Expected a message of msgpack types (dict, list, str, bytes, int, float, "
                f"bool, None), got one that cannot be packed: {exc}"
            ) from exc
        return packed

    def envelope(self, deadline: float, targets: Targets, packed_message: bytes) -> bytes:
        data: bytes = (
            b"\x93"
            + msgpack.packb(deadline, use_bin_type=True)
            + msgpack.packb(targets, use_bin_type=True)
            + packed_message
        )
        if self._crypter is not None:
            data = self._crypter.encrypt(data)
        return data

    def open(self, data: bytes) -> tuple[float, Targets, dict[str, Any]]:
        if self._crypter is not None:
            data = self._crypter.decrypt(data, self._ttl)
        deadline, targets, message = msgpack.unpackb(data, raw=False, strict_map_key=False)
        return deadline, targets, message
