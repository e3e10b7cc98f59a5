"""``MESSAGE_STORAGE = "pigeonhole.compat.messages_extends.storages.FallbackStorage"``."""

from __future__ import annotations

from typing import Any

from django.contrib.messages.storage import fallback

from ...storage import PersistentStorage as _PersistentStorage
from .constants import STICKY_MESSAGE_LEVELS

__all__ = ["FallbackStorage", "PersistentStorage", "StickyStorage"]


class FallbackStorage(_PersistentStorage):
    """
    The library's storage name for ``PersistentStorage``.

    Its chain (sticky, persistent, cookie, session; ``MESSAGES_STORAGES``) is
    built in: sticky levels live in the session, persistent ones in the store,
    the rest in Django's ``FallbackStorage``.
    """


class PersistentStorage(_PersistentStorage):
    """
    The library's name for its database link, which this storage is whole.

    It was meant for ``MESSAGES_STORAGES``, which is gone; as ``MESSAGE_STORAGE``
    it behaves as ``FallbackStorage``.
    """


class StickyStorage(fallback.FallbackStorage):
    """
    The library's sticky link, usable on its own: sticky messages for one request.

    A message at a ``*_STICKY`` level shows in the request that adds it and is
    never saved, as the library's ``StickyStorage`` did; the others go on to
    Django's cookie and session storage. It stores nothing persistent: use
    ``FallbackStorage`` for that, where sticky messages stay until closed.
    """

    def _store(self, messages: list[Any], response: Any, *args: Any, **kwargs: Any) -> list[Any]:
        kept = [message for message in messages if message.level not in STICKY_MESSAGE_LEVELS]
        return super()._store(kept, response, *args, **kwargs)
