"""
Settings for the worker test: a file database that a second process can open,
the django-tasks-db queue, and SMTP to the test's own server on loopback.
"""

import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["PIGEONHOLE_WORKER_DB"]}
}
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ["PIGEONHOLE_WORKER_SMTP_PORT"])
EMAIL_TIMEOUT = 10
PIGEONHOLE = {"SITE_URL": "https://example.com", "EMAIL_RETRY_DELAY": 0}
