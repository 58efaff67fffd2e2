"""Every public name a Channels 4.x project imports from the framework core exists in narrows."""

from __future__ import annotations

import importlib
import inspect

import pytest

CHANNELS_NAMES = {
    "narrows.routing": [
        "ProtocolTypeRouter",
        "URLRouter",
        "ChannelNameRouter",
        "get_default_application",
    ],
    "narrows.consumer": ["AsyncConsumer", "SyncConsumer", "get_handler_name"],
    "narrows.generic.websocket": [
        "WebsocketConsumer",
        "AsyncWebsocketConsumer",
        "JsonWebsocketConsumer",
        "AsyncJsonWebsocketConsumer",
    ],
    "narrows.generic.http": ["AsyncHttpConsumer"],
    "narrows.exceptions": [
        "RequestAborted",
        "RequestTimeout",
        "InvalidChannelLayerError",
        "AcceptConnection",
        "DenyConnection",
        "ChannelFull",
        "MessageTooLarge",
        "StopConsumer",
    ],
    "narrows.db": ["database_sync_to_async", "aclose_old_connections", "DatabaseSyncToAsync"],
    "narrows.utils": ["name_that_thing", "await_many_dispatch"],
    "narrows.worker": ["Worker"],
    "narrows.testing": ["ApplicationCommunicator", "HttpCommunicator", "WebsocketCommunicator"],
    "narrows.testing.websocket": ["WebsocketCommunicator"],
    "narrows.testing.http": ["HttpCommunicator"],
    "narrows.testing.application": ["ApplicationCommunicator"],
}


@pytest.mark.parametrize(("module", "names"), sorted(CHANNELS_NAMES.items()))
def test_channels_names_exist(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    missing = [name for name in names if not hasattr(imported, name)]
    assert missing == [], f"{module} lacks {missing}"


# Signatures users call or override, as in Channels 4.3.
SIGNATURES = {
    ("narrows.generic.websocket", "AsyncWebsocketConsumer", "accept"): [
        "self",
        "subprotocol",
        "headers",
    ],
    ("narrows.generic.websocket", "WebsocketConsumer", "close"): ["self", "code", "reason"],
    ("narrows.generic.websocket", "WebsocketConsumer", "send"): [
        "self",
        "text_data",
        "bytes_data",
        "close",
    ],
    ("narrows.generic.websocket", "AsyncJsonWebsocketConsumer", "send_json"): [
        "self",
        "content",
        "close",
    ],
    ("narrows.generic.http", "AsyncHttpConsumer", "send_headers"): ["self", "status", "headers"],
    ("narrows.generic.http", "AsyncHttpConsumer", "send_body"): ["self", "body", "more_body"],
    ("narrows.testing.websocket", "WebsocketCommunicator", "__init__"): [
        "self",
        "application",
        "path",
        "headers",
        "subprotocols",
        "spec_version",
    ],
    ("narrows.testing.http", "HttpCommunicator", "__init__"): [
        "self",
        "application",
        "method",
        "path",
        "body",
        "headers",
    ],
    ("narrows.worker", "Worker", "__init__"): [
        "self",
        "application",
        "channels",
        "channel_layer",
        "max_applications",
    ],
}


@pytest.mark.parametrize(("where", "params"), sorted(SIGNATURES.items()))
def test_signatures_match_channels(where: tuple[str, str, str], params: list[str]) -> None:
    module, cls, method = where
    function = getattr(getattr(importlib.import_module(module), cls), method)
    assert list(inspect.signature(function).parameters) == params


def test_async_and_sync_classes_keep_channels_hierarchy() -> None:
    from narrows.consumer import AsyncConsumer, SyncConsumer
    from narrows.generic.http import AsyncHttpConsumer
    from narrows.generic.websocket import (
        AsyncJsonWebsocketConsumer,
        AsyncWebsocketConsumer,
        JsonWebsocketConsumer,
        WebsocketConsumer,
    )

    assert issubclass(SyncConsumer, AsyncConsumer)
    assert issubclass(WebsocketConsumer, SyncConsumer)
    assert issubclass(JsonWebsocketConsumer, WebsocketConsumer)
    assert issubclass(AsyncWebsocketConsumer, AsyncConsumer)
    assert not issubclass(AsyncWebsocketConsumer, SyncConsumer)
    assert issubclass(AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer)
    assert issubclass(AsyncHttpConsumer, AsyncConsumer)
