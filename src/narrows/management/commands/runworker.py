"""``manage.py runworker CHANNEL [CHANNEL ...]``: run background consumers (as in Channels).

Messages sent to the named channels through the channel layer are dispatched to
``ASGI_APPLICATION`` with a ``{"type": "channel", "channel": NAME}`` scope, usually routed by
``narrows.routing.ChannelNameRouter``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from narrows import DEFAULT_CHANNEL_LAYER

logger = logging.getLogger("narrows.worker")


class Command(BaseCommand):
    help = "Runs a worker that consumes messages sent to the given channels."
    leave_locale_alone = True

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--layer",
            action="store",
            dest="layer",
            default=DEFAULT_CHANNEL_LAYER,
            help="Channel layer alias to use (default: %(default)s).",
        )
        parser.add_argument("channels", nargs="+", help="Channels to listen on.")

    def handle(self, *args: Any, **options: Any) -> None:
        # Imported here so that commands listing (manage.py help) does not load the layers.
        from narrows.layers import get_channel_layer
        from narrows.routing import get_default_application
        from narrows.worker import Worker

        channel_layer = get_channel_layer(options["layer"])
        if channel_layer is None:
            configured = ", ".join(repr(a) for a in getattr(settings, "CHANNEL_LAYERS", {}))
            raise CommandError(
                f"Expected a channel layer named {options['layer']!r} in "
                f"settings.CHANNEL_LAYERS, got {configured or 'no layers'}."
            )
        channels: list[str] = options["channels"]
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"Running worker for channels {', '.join(channels)} (layer {options['layer']!r})",
            )
        logger.info("Running worker for channels %s", channels)
        worker = Worker(
            application=get_default_application(),
            channels=channels,
            channel_layer=channel_layer,
        )
        worker.run()  # type: ignore[no-untyped-call]
