"""The same site under a WSGI server (gunicorn): the reference for request.META."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.asgi_handler.site.settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
