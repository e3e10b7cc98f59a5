"""``MESSAGE_STORAGE = "pigeonhole.compat.messages_extends.storages.FallbackStorage"``."""

from __future__ import annotations

from ...storage import PersistentStorage

__all__ = ["FallbackStorage"]


class FallbackStorage(PersistentStorage):
    """
    The library's storage name for ``PersistentStorage``.

    Its chain (sticky, persistent, cookie, session; ``MESSAGES_STORAGES``) is
    built in: sticky levels live in the session, persistent ones in the store,
    the rest in Django's ``FallbackStorage``.
    """
