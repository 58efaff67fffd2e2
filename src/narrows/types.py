"""ASGI 3 types shared by the server and the framework (ASGI spec 2.5).

One module holds the ASGI shapes the server, the framework and the test communicators
share. Scopes and messages are mappings (``Scope``, ``Message``): an ASGI application may
put any key in them, and the server checks the keys it reads where it reads them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Headers = list[tuple[bytes, bytes]]
HeaderIterable = Iterable[tuple[bytes, bytes]]
Address = tuple[str, int]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
