"""django-messages-extends: ``messages_extends_message``, one row per recipient."""

from __future__ import annotations

from typing import Any

from .base import Entry, Item, Reader, Skip

__all__ = ["MessagesExtendsReader"]


class MessagesExtendsReader(Reader):
    """One row per recipient, read or not; the library kept no read time."""

    name = "messages_extends"
    tables = ("messages_extends_message",)
    wanted = (
        "id",
        "user_id",
        "message",
        "level",
        "extra_tags",
        "created",
        "modified",
        "read",
        "expires",
    )

    def convert(self, rows: list[dict[str, Any]]) -> list[Item | Skip]:
        return [self.item(row) for row in rows]

    def item(self, row: dict[str, Any]) -> Item | Skip:
        if row["user_id"] is None:
            return Skip(row["id"], "no recipient")
        created = self.when(row["created"])
        # The library kept no read time; its ``modified`` is when the row last
        # changed, which for a read message is when it was marked read.
        read_at = (self.when(row.get("modified")) or created) if row["read"] else None
        return Item(
            source_id=row["id"],
            level=int(row["level"]),
            message=row["message"],
            extra_tags=row["extra_tags"] or "",
            created=created,
            expires=self.when(row.get("expires")),
            entries=[Entry(user_id=row["user_id"], read_at=read_at)],
        )
