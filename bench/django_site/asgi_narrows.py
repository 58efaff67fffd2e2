"""narrows' handler: ``narrows bench.django_site.asgi_narrows:application``."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.django_site.settings")

from narrows.asgi import get_asgi_application

application = get_asgi_application()
