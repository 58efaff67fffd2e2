"""The bench site with no middleware at all: the ``JsonResponse`` workload."""

from bench.django_site.settings import *  # noqa: F403

MIDDLEWARE: list[str] = []
