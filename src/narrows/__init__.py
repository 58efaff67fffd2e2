"""narrows: Django's ASGI stack in one package.

The protocol server (``narrows`` command, ``narrows.server``), the Channels-compatible
framework (``narrows.routing``, ``narrows.consumer``, ``narrows.generic``, ...), channel
layers (``narrows.layers``) and Django management commands (``narrows.management``).
"""

__version__ = "0.1.0"

#: Alias of the channel layer consumers use unless they say otherwise (as in Channels).
DEFAULT_CHANNEL_LAYER = "default"


def install_as_channels() -> None:
    """Make ``import channels`` / ``channels_redis`` give narrows (see narrows.channels_alias)."""
    from narrows.channels_alias import install_as_channels as install

    install()
