"""``MESSAGE_STORAGE = "pigeonhole.compat.drf_messages.storage.DBStorage"``."""

from __future__ import annotations

from typing import Any

from django.contrib.messages.storage.base import Message

from ... import api
from ...storage import PersistentStorage

__all__ = ["DBStorage"]


class DBStorage(PersistentStorage):
    """
    ``PersistentStorage`` under drf-messages' name, with its two readers.

    They return lists of stored messages, newest first, where the library
    returned QuerySets of its model. Like its storage it needs no session: a
    token-only API stores and lists messages (sticky ones need the session).
    """

    #: How many messages the readers return at most.
    reader_limit = 1000

    def get_queryset(self) -> list[Any]:
        """Return the user's messages, read and unread."""
        return api.inbox(self.request.user, state="all", limit=self.reader_limit)

    def get_unread_queryset(self) -> list[Any]:
        """Return the user's unread messages."""
        return api.inbox(self.request.user, state="unread", limit=self.reader_limit)

    def __contains__(self, item: Any) -> bool:
        """Match a text, a level or a message; refuse anything else, as the library did."""
        if not isinstance(item, str | int | Message):
            raise ValueError(f'Unsupported "in" condition with type {type(item)} in DBStorage')
        return super().__contains__(item)
