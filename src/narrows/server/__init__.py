"""The narrows protocol server: HTTP/1.1 and WebSocket over asyncio, ASGI 3.

This package knows only the ASGI interface; it never imports Django or the framework.
"""
