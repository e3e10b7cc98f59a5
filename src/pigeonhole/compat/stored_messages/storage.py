"""``MESSAGE_STORAGE = "pigeonhole.compat.stored_messages.storage.PersistentStorage"``."""

from __future__ import annotations

from ...storage import PersistentStorage, PersistentStorageMixin

__all__ = ["PersistentStorage", "StorageMixin"]

#: The library's name for the mixin a site attaches to its own storage class.
StorageMixin = PersistentStorageMixin
