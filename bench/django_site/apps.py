from django.apps import AppConfig


class BenchSiteConfig(AppConfig):
    name = "bench.django_site"
    label = "django_site"
