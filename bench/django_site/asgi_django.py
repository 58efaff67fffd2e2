"""Django's own ASGI handler, for uvicorn and daphne."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.django_site.settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()
