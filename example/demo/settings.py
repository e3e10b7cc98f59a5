"""
Settings for the pigeonhole demo site: SQLite, DEBUG on, nothing else to run.

Not for production: the secret key is public and DEBUG is on.
"""

import os
from importlib.util import find_spec
from pathlib import Path

import pigeonhole  # safe in settings: plain constants

BASE_DIR = Path(__file__).resolve().parent.parent  # example/

SECRET_KEY = "demo-only-not-secret-pigeonhole"  # a public demo key
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "demo",  # before pigeonhole, so its templates/pigeonhole/base.html frames the inbox page
    "pigeonhole",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo.urls"
WSGI_APPLICATION = "demo.wsgi.application"  # manage.py runserver: no streaming, the page polls
ASGI_APPLICATION = "demo.asgi.application"  # python3 dev.py demo serves this with uvicorn

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
                # {{ pigeonhole_unread_count }}, counted only on pages that show it.
                "pigeonhole.context_processors.unread_count",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # DEMO_DATABASE lets the browser tests run the demo on a throwaway file.
        "NAME": os.environ.get("DEMO_DATABASE") or BASE_DIR / "db.sqlite3",
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# The point of the demo: messages.add_message() and friends can now store
# messages for the logged-in user.
MESSAGE_STORAGE = "pigeonhole.storage.PersistentStorage"

# Each email is one line in the terminal running the demo, and a file in example/sent-mail/
# (demo/mail.py). Stored warnings and errors are emailed, and so is any message sent with
# "Email it too"; the links in them need the site's address, which dev.py passes
# (DEMO_SITE_URL) with the port it serves on.
EMAIL_BACKEND = "demo.mail.EmailBackend"
DEFAULT_FROM_EMAIL = "pigeonhole demo <demo@example.com>"
PIGEONHOLE = {
    "SITE_URL": os.environ.get("DEMO_SITE_URL", "http://127.0.0.1:8000"),
    "EMAIL_LEVELS": [pigeonhole.PERSISTENT_WARNING, pigeonhole.PERSISTENT_ERROR],
}
# Django 6.1 configures email backends in MAILERS.
if find_spec("django.core.mail.handler"):
    MAILERS = {"default": {"BACKEND": EMAIL_BACKEND}}
    del EMAIL_BACKEND
