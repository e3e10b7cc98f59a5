"""
Settings for the test suite.

``PIGEONHOLE_TEST_DB`` picks the database (sqlite, postgres, mariadb); ``dev.py
test`` runs the suite once per database it can reach. ``PIGEONHOLE_TEST_DB_NAME`` names
the throwaway test database, so two checkouts can run their suites on one server at once.
"""

import os
import sys
from importlib.util import find_spec
from pathlib import Path

TEST_DB = os.environ.get("PIGEONHOLE_TEST_DB", "sqlite")

_DATABASES = {
    "sqlite": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    "postgres": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "test",
        "USER": os.environ.get("PIGEONHOLE_PG_USER", "postgres"),
        "HOST": os.environ.get("PIGEONHOLE_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("PIGEONHOLE_PG_PORT", "5432"),
    },
    "mariadb": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": "test",
        "USER": os.environ.get("PIGEONHOLE_MARIADB_USER", "root"),
        "PASSWORD": "",
        "HOST": os.environ.get("PIGEONHOLE_MARIADB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("PIGEONHOLE_MARIADB_PORT", "3306"),
        "OPTIONS": {"charset": "utf8mb4"},
        "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
    },
}
DATABASES = {"default": _DATABASES[TEST_DB]}
if TEST_DB != "sqlite" and os.environ.get("PIGEONHOLE_TEST_DB_NAME"):
    DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ["PIGEONHOLE_TEST_DB_NAME"]

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "pigeonhole",
    "tests.testapp",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_tasks_db",
]

# Django's own messages test suite, unpacked from Django's source distribution by
# ``dev.py``; when present, its app is installed so its views and models work.
DJANGO_TESTS_DIR = os.environ.get("PIGEONHOLE_DJANGO_TESTS")
if DJANGO_TESTS_DIR and (Path(DJANGO_TESTS_DIR) / "messages_tests").is_dir():
    sys.path.insert(0, DJANGO_TESTS_DIR)
    INSTALLED_APPS.append("messages_tests")

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

# Email tasks run at once in tests; test_mail.py switches to django-tasks-db where it needs a queue.
_TASKS_PACKAGE = "django.tasks" if find_spec("django.tasks") else "django_tasks"
TASKS = {"default": {"BACKEND": f"{_TASKS_PACKAGE}.backends.immediate.ImmediateBackend"}}

# Django 6.1 replaces EMAIL_BACKEND with MAILERS and warns until a site configures it.
if find_spec("django.core.mail.handler"):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}

ROOT_URLCONF = "tests.urls"
MESSAGE_STORAGE = "pigeonhole.storage.PersistentStorage"
# Tests add to this dict (``{**settings.PIGEONHOLE, ...}``) rather than replace it, so a
# backend chosen by the ``store`` fixture survives a test's own settings.
PIGEONHOLE: dict = {}
SESSION_ENGINE = "django.contrib.sessions.backends.db"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# The REST API's tests: session auth (CSRF enforced) and token auth, as a project would.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The live server's static files handler needs a URL, though the suite serves none.
STATIC_URL = "/static/"
SPECTACULAR_SETTINGS = {"TITLE": "django-pigeonhole", "VERSION": "test"}
