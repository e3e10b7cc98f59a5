"""Django's own contrib.messages tests, run against pigeonhole's storage.

Django's tests for its storages are the best proof that ``PersistentStorage`` is a drop-in
``MESSAGE_STORAGE``; running them on ``PersistentStorageMixin`` over Session and Cookie
storage also shows that the mixin attaches to any storage class, as the design promises.

The suite is not in Django's wheel: ``dev.py test`` unpacks ``tests/messages_tests`` from the
installed release's sdist and points ``PIGEONHOLE_DJANGO_TESTS`` at it; tests/settings.py then
puts it on ``sys.path`` and installs the ``messages_tests`` app (its urls and model).

Django's modules are imported as modules, never their classes, so that pytest collects only
the subclasses below and not Django's originals as well.
"""

import importlib.util
import os

import pytest

_DIR = os.environ.get("PIGEONHOLE_DJANGO_TESTS")
if not _DIR:
    pytest.skip(
        "Django's messages test suite is not available: PIGEONHOLE_DJANGO_TESTS is not set "
        "(`python3 dev.py test` downloads it and sets it)",
        allow_module_level=True,
    )
if importlib.util.find_spec("messages_tests") is None:
    pytest.skip(
        f"PIGEONHOLE_DJANGO_TESTS={_DIR} holds no importable messages_tests package",
        allow_module_level=True,
    )

from django.contrib.messages.storage.cookie import CookieStorage  # noqa: E402
from django.contrib.messages.storage.session import SessionStorage  # noqa: E402
from django.test import override_settings  # noqa: E402
from messages_tests import test_cookie, test_fallback, test_mixins, test_session  # noqa: E402

from pigeonhole.storage import PersistentStorage, PersistentStorageMixin  # noqa: E402


# BaseTests sets MESSAGE_STORAGE to f"{storage_class.__module__}.{storage_class.__name__}", so
# these two must stay importable at module level as tests.test_django_messages_suite.<name>.
class PersistentSessionStorage(PersistentStorageMixin, SessionStorage):
    """Session storage with persistence attached, as a site with its own storage would do."""


class PersistentCookieStorage(PersistentStorageMixin, CookieStorage):
    """Cookie storage with persistence attached, as a site with its own storage would do."""


class PersistentFallbackTests(test_fallback.FallbackTests):
    storage_class = PersistentStorage


class PersistentSessionTests(test_session.SessionTests):
    storage_class = PersistentSessionStorage


class PersistentCookieTests(test_cookie.CookieTests):
    storage_class = PersistentCookieStorage


# Not a storage-class suite: SuccessMessageMixin through the whole middleware stack, with the
# messages cookie decoded as Django expects to find it.
@override_settings(MESSAGE_STORAGE="pigeonhole.storage.PersistentStorage")
class PersistentSuccessMessageMixinTests(test_mixins.SuccessMessageMixinTests):
    pass
