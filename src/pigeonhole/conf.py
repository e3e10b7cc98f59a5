"""
The ``PIGEONHOLE`` settings dict, with defaults, read lazily.

Settings are read on first use, never at import time, and re-read when a test
changes them with ``override_settings`` (``setting_changed`` clears the cache),
so nothing stale survives into the next test.
"""

from __future__ import annotations

from contextlib import suppress
from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from . import constants

if TYPE_CHECKING:  # the backends and brokers import this module
    from .backends.base import BaseBackend
    from .brokers.base import BaseBroker

__all__ = ["DATA_DEPTH_CEILING", "DEFAULTS", "get_backend", "get_broker", "pigeonhole_settings"]

#: The highest ``MAX_DATA_DEPTH`` a site may set. JSON nested much deeper
#: overflows the stack of the code that parses, encodes or walks it.
DATA_DEPTH_CEILING = 100

DEFAULTS: dict[str, Any] = {
    "BACKEND": "pigeonhole.backends.db.DatabaseBackend",
    "OPTIONS": {},
    "BROKER": "pigeonhole.brokers.locmem.LocMemBroker",
    "BROKER_OPTIONS": {},
    "STORE_LEVELS": constants.PERSISTENT_LEVELS,
    "STICKY_LEVELS": constants.STICKY_LEVELS,
    "READ_ON_DISPLAY": True,
    "ANONYMOUS": "flash",
    "ALLOW_DELETE_UNREAD": False,
    "DELETE_READ": False,
    "MAX_LENGTH": 10_000,
    # A message's data, as compact JSON in UTF-8, and how deep it may nest.
    "MAX_DATA_BYTES": 8192,
    "MAX_DATA_DEPTH": 20,
    # Email is opt-in: adding pigeonhole to a site must not start mailing its users.
    "EMAIL_LEVELS": (),
    "RETENTION_DAYS": None,
    "STREAM_KEEPALIVE": 15,
    "STREAM_MAX_PER_USER": 10,
    # Open streams one server process holds before answering 503 (docs/live.md).
    "STREAM_MAX_PER_PROCESS": 10_000,
    "STREAM_REPLAY_LIMIT": 100,
    # Seconds between polls suggested to clients (X-Poll-Interval) by the count
    # endpoint and the REST API.
    "POLL_INTERVAL": 30,
    # What badges count: "unread" messages, or "unseen" ones (unread and not yet shown).
    "BADGE": "unread",
    # Email, digests and preferences (docs/email.md).
    "CATEGORIES": {},
    "SITE_URL": None,
    "EMAIL_FROM": None,
    "EMAIL_RETRIES": 5,
    "EMAIL_RETRY_DELAY": 60,
    "DIGEST_DELAY_MINUTES": 60,
    "UNSUBSCRIBE_DAYS": 90,
    "TASK_BACKEND": "default",
    "TASK_QUEUE": "default",
    # A callable (or its import string) giving a user's language for their emails.
    "USER_LANGUAGE": None,
    # A cache alias shared by every process; lets a page with nothing unread skip
    # its query (docs/settings.md). None: ask the store on every page.
    "CACHE": None,
}


class PigeonholeSettings:
    """
    Attribute access to ``settings.PIGEONHOLE`` merged over ``DEFAULTS``.

    Level collections come back as frozensets: they are looked up on every
    ``messages.add()``, and a set makes that O(1).
    """

    _level_keys = ("STORE_LEVELS", "STICKY_LEVELS", "EMAIL_LEVELS")

    def __init__(self) -> None:
        self._cache: dict[str, Any] | None = None

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(django_settings, "PIGEONHOLE", None)
        return value if isinstance(value, dict) else {}

    def _load(self) -> dict[str, Any]:
        merged = {**DEFAULTS, **self.user_settings}
        for key in self._level_keys:
            # A bad value is left as given: the system checks report it with a hint.
            with suppress(TypeError):
                merged[key] = frozenset(merged[key])
        return merged

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(f"PIGEONHOLE has no setting {name!r}")
        if self._cache is None:
            self._cache = self._load()
        return self._cache[name]

    def reload(self) -> None:
        self._cache = None
        get_backend.cache_clear()
        get_broker.cache_clear()


pigeonhole_settings = PigeonholeSettings()


@cache
def get_backend() -> BaseBackend:
    """
    Return the configured backend instance, built once per process.

    One instance serves every request: backends hold connection pools, which
    must be shared, not rebuilt per call.
    """
    cls = import_string(pigeonhole_settings.BACKEND)
    backend: BaseBackend = cls(**(pigeonhole_settings.OPTIONS or {}))
    return backend


@cache
def get_broker() -> BaseBroker:
    """Return the configured broker instance, built once per process."""
    cls = import_string(pigeonhole_settings.BROKER)
    broker: BaseBroker = cls(**(pigeonhole_settings.BROKER_OPTIONS or {}))
    return broker


@receiver(setting_changed)
def _reload_settings(*, setting: str, **kwargs: object) -> None:
    if setting in ("PIGEONHOLE", "MESSAGE_LEVEL", "MESSAGE_TAGS"):
        pigeonhole_settings.reload()
