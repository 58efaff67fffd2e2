"""Test helpers: drive ASGI applications in-process, or run a live narrows server.

``ApplicationCommunicator``, ``HttpCommunicator`` and ``WebsocketCommunicator`` run the
application on the test's event loop; ``ChannelsLiveServerTestCase`` (imported on first
use, it needs Django's test machinery) runs the narrows server in a child process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from narrows.testing.application import ApplicationCommunicator
from narrows.testing.http import HttpCommunicator
from narrows.testing.websocket import WebsocketCommunicator

if TYPE_CHECKING:
    from narrows.testing.live import ChannelsLiveServerTestCase

__all__ = [
    "ApplicationCommunicator",
    "ChannelsLiveServerTestCase",
    "HttpCommunicator",
    "WebsocketCommunicator",
]


def __getattr__(name: str) -> Any:
    if name == "ChannelsLiveServerTestCase":
        from narrows.testing.live import ChannelsLiveServerTestCase

        return ChannelsLiveServerTestCase
    raise AttributeError(f"module 'narrows.testing' has no attribute {name!r}")
