"""The Django site bench/django.py serves: startproject's settings, a template, one query.

``settings`` is ``django-admin startproject``'s (its ``INSTALLED_APPS`` and ``MIDDLEWARE``,
SQLite, ``CONN_MAX_AGE`` left at 0); ``settings_bare`` has no middleware, for the
``JsonResponse`` workload. The database file is ``BENCH_DJANGO_DB`` (bench/django.py makes
it with :func:`bench.django_site.database.make_database` before starting any server).
"""
