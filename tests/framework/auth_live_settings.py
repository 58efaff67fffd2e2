"""Settings for the live-server cases (``auth_live_cases.py``): a file-based SQLite test
database, as a server in another process needs, and a static files directory.

``NARROWS_LIVE_DIR`` (set by ``test_live.py``) is where the databases and static files go.
"""

import os
import tempfile
from pathlib import Path

from tests.settings import *  # noqa: F403

_DIR = Path(os.environ.get("NARROWS_LIVE_DIR") or tempfile.gettempdir())

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(_DIR / "live.sqlite3"),
        "TEST": {"NAME": str(_DIR / "live-test.sqlite3")},
    }
}
ROOT_URLCONF = "tests.framework.auth_live_app"
ASGI_APPLICATION = "tests.framework.auth_live_app.application"
STATICFILES_DIRS = [str(_DIR / "static")]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
