"""django-monitio: ``monitio_monit``, one row per recipient, monitio's own levels."""

from __future__ import annotations

from typing import Any

from ..monitio.constants import DEBUG, ERROR, to_pigeonhole
from .base import Item, Skip
from .messages_extends import MessagesExtendsReader

__all__ = ["MonitioReader"]


class MonitioReader(MessagesExtendsReader):
    """The table django-messages-extends also came from, with a sender, subject and URL."""

    name = "monitio"
    tables = ("monitio_monit",)
    wanted = (*MessagesExtendsReader.wanted, "from_user_id", "subject", "close_timeout", "url")

    def item(self, row: dict[str, Any]) -> Item | Skip:
        if row["user_id"] is not None and not DEBUG <= int(row["level"]) <= ERROR:
            # Django's own levels: monitio deleted these once shown.
            return Skip(row["id"], "not persistent (shown once)")
        item = super().item(row)
        if isinstance(item, Item):
            item.level = to_pigeonhole(item.level)
            item.subject = row.get("subject") or ""
            item.url = row.get("url") or ""
            item.from_user_id = row.get("from_user_id")
            item.close_timeout = row.get("close_timeout")
        return item
