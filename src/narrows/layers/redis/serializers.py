"""Message serializers and their registry: channels_redis' ``serializer_format`` API.

``serializer_format`` in a Redis layer's CONFIG names an entry of ``registry``
(``"msgpack"``, the default, or ``"json"``); register your own with
``registry.register_serializer("name", MySerializer)``. A serializer turns a message into
bytes and back: ``serialize()`` applies ``as_bytes()``, then Fernet encryption when keys
are given, then ``random_prefix_length`` random bytes in front (channels_redis stores
messages in sorted sets, whose members must differ); ``deserialize()`` undoes the three.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import json
import secrets
from collections.abc import Sequence
from typing import Any

import msgpack


class SerializerDoesNotExist(KeyError):
    """No serializer is registered under that format name."""


class InvalidSerializerError(TypeError, AssertionError):
    """A class without ``serialize`` and ``deserialize`` was registered as a serializer.

    Also an ``AssertionError``: channels_redis asserts here, and code catches that."""


def make_fernet(key: str | bytes) -> Any:
    """The Fernet for one configured key: SHA-256 of the key, as channels_redis derives
    it, so keys that work there work here."""
    try:
        from cryptography.fernet import Fernet
    except ImportError as exc:
        raise ValueError(
            "symmetric_encryption_keys needs the 'cryptography' package (pip install "
            "narrows[redis])"
        ) from exc
    raw = key.encode() if isinstance(key, str) else key
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(raw).digest()))


def make_crypter(keys: Sequence[str | bytes] | None) -> Any:
    """A MultiFernet over ``keys`` (the first encrypts, all decrypt), or None."""
    if not keys:
        return None
    if isinstance(keys, str | bytes):
        raise ValueError(
            "Expected symmetric_encryption_keys to be a list of keys, got a single "
            f"{type(keys).__name__}"
        )
    from cryptography.fernet import MultiFernet

    return MultiFernet([make_fernet(key) for key in keys])


class BaseMessageSerializer(abc.ABC):
    """Subclass and define ``as_bytes`` / ``from_bytes``; encryption and the random
    prefix come with it."""

    def __init__(
        self,
        symmetric_encryption_keys: Sequence[str | bytes] | None = None,
        random_prefix_length: int = 0,
        expiry: float | None = None,
    ) -> None:
        self.random_prefix_length = random_prefix_length
        self.expiry = expiry
        self.crypter = make_crypter(symmetric_encryption_keys)

    def make_fernet(self, key: str | bytes) -> Any:
        return make_fernet(key)

    @abc.abstractmethod
    def as_bytes(self, message: Any, *args: Any, **kwargs: Any) -> bytes:
        """The message as bytes."""

    @abc.abstractmethod
    def from_bytes(self, message: bytes, *args: Any, **kwargs: Any) -> Any:
        """The message from ``as_bytes``'s bytes."""

    def serialize(self, message: Any) -> bytes:
        data = self.as_bytes(message)
        if self.crypter is not None:
            data = self.crypter.encrypt(data)
        if self.random_prefix_length > 0:
            data = secrets.token_bytes(self.random_prefix_length) + data
        return data

    def deserialize(self, message: bytes) -> Any:
        if self.random_prefix_length > 0:
            message = message[self.random_prefix_length :]
        if self.crypter is not None:
            # Tokens older than the message expiry (plus slack for clock skew) are refused.
            ttl = None if self.expiry is None else int(self.expiry) + 10
            message = self.crypter.decrypt(message, ttl)
        return self.from_bytes(message)


class JSONSerializer(BaseMessageSerializer):
    """UTF-8 JSON: readable in Redis, but no bytes values."""

    def as_bytes(self, message: Any, *args: Any, **kwargs: Any) -> bytes:
        return json.dumps(message, *args, **kwargs).encode("utf-8")

    def from_bytes(self, message: bytes, *args: Any, **kwargs: Any) -> Any:
        return json.loads(message, *args, **kwargs)


class MsgPackSerializer(BaseMessageSerializer):
    """msgpack, the default: compact, and bytes values stay bytes."""

    def as_bytes(self, message: Any, *args: Any, **kwargs: Any) -> bytes:
        packed: bytes = msgpack.packb(message, *args, **kwargs)
        return packed

    def from_bytes(self, message: bytes, *args: Any, **kwargs: Any) -> Any:
        return msgpack.unpackb(message, *args, **kwargs)


class SerializersRegistry:
    """Format name -> serializer class (the pattern of ``django.core.serializers``)."""

    def __init__(self) -> None:
        self._registry: dict[str, type[Any]] = {}

    def register_serializer(self, format: str, serializer_class: type[Any]) -> None:
        usable = isinstance(serializer_class, type) and (
            issubclass(serializer_class, BaseMessageSerializer)
            or (hasattr(serializer_class, "serialize") and hasattr(serializer_class, "deserialize"))
        )
        if not usable:
            raise InvalidSerializerError(
                f"Expected a class with serialize() and deserialize() methods (or a "
                f"BaseMessageSerializer subclass) for serializer {format!r}, "
                f"got {serializer_class!r}"
            )
        self._registry[format] = serializer_class

    def get_serializer(self, format: str, *args: Any, **kwargs: Any) -> Any:
        try:
            serializer_class = self._registry[format]
        except KeyError:
            raise SerializerDoesNotExist(format) from None
        return serializer_class(*args, **kwargs)

    def formats(self) -> list[str]:
        return sorted(self._registry)


registry = SerializersRegistry()
registry.register_serializer("json", JSONSerializer)
registry.register_serializer("msgpack", MsgPackSerializer)

__all__ = [
    "BaseMessageSerializer",
    "InvalidSerializerError",
    "JSONSerializer",
    "MsgPackSerializer",
    "SerializerDoesNotExist",
    "SerializersRegistry",
    "make_crypter",
    "make_fernet",
    "registry",
]
