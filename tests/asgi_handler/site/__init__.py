"""A small Django site served by a real narrows process in tests/asgi_handler."""
