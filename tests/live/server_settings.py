"""
Settings for the test project served or run by another OS process.

The test suite's settings, plus two environment variables that put the process
in the running test's world:

- ``PIGEONHOLE_SERVER_DB_NAME``: the name of the test database (pytest-django's
  ``test_...``), so the process reads and writes where the test does;
- ``PIGEONHOLE_SERVER_SETTINGS``: the ``PIGEONHOLE`` dict as JSON (the backend,
  and the broker with a channel of the test's own);
- ``PIGEONHOLE_SERVER_CACHES`` (optional): ``CACHES`` as JSON.

``PIGEONHOLE_TEST_DB`` picks the database as for the suite. SQLite is refused:
another process cannot see the suite's in-memory test database.
"""

import json
import os

from django.core.exceptions import ImproperlyConfigured

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, TEST_DB

if TEST_DB == "sqlite":
    raise ImproperlyConfigured("Another process cannot share SQLite's in-memory test database.")

DATABASES["default"]["NAME"] = os.environ["PIGEONHOLE_SERVER_DB_NAME"]
PIGEONHOLE = json.loads(os.environ.get("PIGEONHOLE_SERVER_SETTINGS", "{}"))
if os.environ.get("PIGEONHOLE_SERVER_CACHES"):
    # The test's CACHES, for a PIGEONHOLE["CACHE"] the processes share.
    CACHES = json.loads(os.environ["PIGEONHOLE_SERVER_CACHES"])
