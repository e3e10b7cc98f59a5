"""
django-stored-messages: one ``Message`` row, recipients in ``MessageArchive``.

A message still in a user's ``Inbox`` is unread for them; one only in the
archive was read. The library kept no read time, so the message's date stands in.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .base import Entry, Item, Reader, Skip

__all__ = ["StoredMessagesReader"]


class StoredMessagesReader(Reader):
    name = "stored_messages"
    tables = ("stored_messages_message", "stored_messages_messagearchive", "stored_messages_inbox")
    wanted = ("id", "message", "level", "tags", "url", "date")

    def convert(self, rows: list[dict[str, Any]]) -> list[Item | Skip]:
        ids = [row["id"] for row in rows]
        recipients: dict[Any, set[Any]] = defaultdict(set)
        unread: set[tuple[Any, Any]] = set()
        wanted = ("user_id", "message_id")
        for link in self.rows_for(self.tables[1], wanted, "message_id", ids):
            recipients[link["message_id"]].add(link["user_id"])
        for link in self.rows_for(self.tables[2], wanted, "message_id", ids):
            recipients[link["message_id"]].add(link["user_id"])
            unread.add((link["message_id"], link["user_id"]))
        converted: list[Item | Skip] = []
        for row in rows:
            users = recipients.get(row["id"])
            if not users:
                converted.append(Skip(row["id"], "no recipient"))
                continue
            created = self.when(row["date"])
            converted.append(
                Item(
                    source_id=row["id"],
                    level=int(row["level"]),
                    message=row["message"],
                    extra_tags=row["tags"] or "",
                    url=row.get("url") or "",
                    created=created,
                    entries=[
                        Entry(
                            user_id=user, read_at=None if (row["id"], user) in unread else created
                        )
                        for user in sorted(users)
                    ],
                )
            )
        return converted
