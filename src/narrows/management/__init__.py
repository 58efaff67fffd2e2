"""Django management commands: ``runserver`` (ASGI, through the narrows server), ``runworker``.

This package is the only place that wires the narrows server to Django.
"""
