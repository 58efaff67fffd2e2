"""Django settings of the benchmark echo project: what a small Channels project has.

A database is configured (SQLite, never opened by the echo) so Django's connection
handling is in place, as in a real project; no channel layer is needed for an echo.
"""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.channels_echo.urls"
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/narrows-bench-echo.sqlite3"}
}
USE_TZ = True
LOGGING_CONFIG = None
