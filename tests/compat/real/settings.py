"""The suite's settings plus the old libraries that still install."""

from importlib.util import find_spec

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

#: App label -> the package on PyPI.
LIBRARIES = {
    "messages_extends": "django-messages-extends",
    "drf_messages": "drf-messages",
    "notifications": "django-notifications-community",
}

INSTALLED_APPS = [*INSTALLED_APPS, *(app for app in LIBRARIES if find_spec(app))]
DJANGO_NOTIFICATIONS_CONFIG = {"USE_JSONFIELD": True, "SOFT_DELETE": True}
