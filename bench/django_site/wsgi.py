"""Django's WSGI handler, for gunicorn and granian ``--interface wsgi``."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.django_site.settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
