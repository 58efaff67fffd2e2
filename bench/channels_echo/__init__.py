"""A minimal Django project whose WebSocket echo is the same ``AsyncWebsocketConsumer`` code
served through Channels (``asgi_channels``) and through the narrows framework (``asgi_narrows``).

The consumer body lives once in :func:`consumers.make_echo_consumer`; each asgi module passes
its framework's ``AsyncWebsocketConsumer`` base class, so only the import differs, exactly as
in a Channels project migrated to narrows.
"""
