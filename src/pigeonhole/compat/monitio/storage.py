"""``MESSAGE_STORAGE = "pigeonhole.compat.monitio.storage.PersistentMessageStorage"``."""

from __future__ import annotations

from typing import Any

from ...storage import PersistentStorage
from .constants import to_pigeonhole

__all__ = ["PersistentMessageStorage"]


class PersistentMessageStorage(PersistentStorage):
    """
    ``PersistentStorage`` under monitio's name, taking monitio's levels.

    ``messages.add_message(request, monitio.WARNING, ...)`` stores the message
    under ``PERSISTENT_WARNING``. ``get_persistent``, ``get_persistent_unread``,
    ``get_nonpersistent``, ``count_unread`` and ``count_persistent_unread`` are
    pigeonhole's own; ``count_nonpersistent`` is added here.
    """

    def add(self, level: Any, message: Any, extra_tags: Any = "", **options: Any) -> Any:
        if isinstance(level, int):
            level = to_pigeonhole(level)
        return super().add(level, message, extra_tags, **options)

    def count_nonpersistent(self) -> int:
        """Count the messages shown once (sticky and transient), for template badges."""
        return len(self.get_nonpersistent())
