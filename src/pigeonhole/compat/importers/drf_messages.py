"""drf-messages: ``drf_messages_message`` and its tags in ``drf_messages_messagetag``."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .base import Entry, Item, Reader, Skip

__all__ = ["DrfMessagesReader"]


class DrfMessagesReader(Reader):
    name = "drf_messages"
    tables = ("drf_messages_message", "drf_messages_messagetag")
    wanted = ("id", "user_id", "view", "message", "level", "read_at", "created")

    def convert(self, rows: list[dict[str, Any]]) -> list[Item | Skip]:
        tags: dict[Any, list[str]] = defaultdict(list)
        ids = [row["id"] for row in rows]
        for tag in self.rows_for(self.tables[1], ("id", "message_id", "text"), "message_id", ids):
            tags[tag["message_id"]].append(tag["text"])
        converted: list[Item | Skip] = []
        for row in rows:
            if row["user_id"] is None:
                converted.append(Skip(row["id"], "no recipient"))
                continue
            if not row["message"]:
                converted.append(Skip(row["id"], "empty text"))
                continue
            converted.append(
                Item(
                    source_id=row["id"],
                    level=int(row["level"]),
                    message=row["message"],
                    extra_tags=" ".join(sorted(tags[row["id"]])),
                    # The view that added it, kept for sites that filtered on it.
                    data={"view": row["view"]} if row.get("view") else {},
                    created=self.when(row["created"]),
                    entries=[Entry(user_id=row["user_id"], read_at=self.when(row["read_at"]))],
                )
            )
        return converted
