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
_SMTP = "django.core.mail.backends.smtp.EmailBackend"
_PORT = int(os.environ["PIGEONHOLE_WORKER_SMTP_PORT"])
if "MAILERS" in globals():  # Django 6.1+
    MAILERS = {"default": {"BACKEND": _SMTP, "OPTIONS": {"host": "127.0.0.1", "port": _PORT}}}
else:
    EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, EMAIL_TIMEOUT = _SMTP, "127.0.0.1", _PORT, 10
PIGEONHOLE = {"SITE_URL": "https://example.com", "EMAIL_RETRY_DELAY": 0}
