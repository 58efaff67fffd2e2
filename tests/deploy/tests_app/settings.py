"""Django settings of the project the deployment tests serve (stands for ``mysite``)."""

import os

SECRET_KEY = "narrows-deploy-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "narrows",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests_app.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "narrows.layers.redis.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ.get("NARROWS_TEST_REDIS", "redis://127.0.0.1:6379/0")]},
    }
}
