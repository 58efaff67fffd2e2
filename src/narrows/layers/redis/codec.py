"""How messages are stored in Redis: msgpack envelopes, optionally Fernet-encrypted.

An envelope is the msgpack array ``[deadline, targets, message]``: ``deadline`` is the
Unix time after which the message is dropped unreceived; ``targets`` is ``None`` for a
normal channel, the ``!`` suffix (str) of one process-local channel, or a map for the
receiving process: ``{"group": name}`` (deliver to my channels in that group),
``{"add": name, "channel": suffix, "at": time}`` / ``{"discard": name, "channel":
suffix}`` (another process changed the membership of one of my channels), ``{"wake":
1}`` (re-read the lists to pop). The message is packed once per send or group_send and
spliced into each envelope: inline msgpack by default, or, with another
``serializer_format``, that serializer's bytes as a msgpack bin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack

from narrows.layers.redis.serializers import make_crypter

Targets = str | dict[str, Any] | None


class Codec:
    def __init__(
        self,
        symmetric_encryption_keys: Sequence[str | bytes] | None,
        expiry: float,
        body: Any = None,
    ) -> None:
        """``body``: a serializer for the message part (None: inline msgpack)."""
        self._crypter = make_crypter(symmetric_encryption_keys)
        self._ttl = int(expiry) + 10
        self._body = body

    def pack_message(self, message: Any) -> bytes:
        try:
            if self._body is not None:
                packed: bytes = msgpack.packb(self._body.serialize(message), use_bin_type=True)
            else:
                packed = msgpack.packb(message, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            kind = "msgpack types (dict, list, str, bytes, int, float, bool, None)"
            if self._body is not None:
                kind = f"types {type(self._body).__name__} can serialize"
            raise TypeError(
                f"Expected a message of {kind}, got one that cannot be packed: {exc}"
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

    def open(self, data: bytes) -> tuple[float, Targets, Any]:
        if self._crypter is not None:
            data = self._crypter.decrypt(data, self._ttl)
        deadline, targets, message = msgpack.unpackb(data, raw=False, strict_map_key=False)
        if self._body is not None and isinstance(message, bytes):
            message = self._body.deserialize(message)
        return deadline, targets, message
