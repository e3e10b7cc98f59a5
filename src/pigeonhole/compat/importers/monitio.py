"""django-monitio: ``monitio_monit``, one row per recipient, monitio's own levels."""

from __future__ import annotations

from typing import Any

from ..monitio.constants import DEBUG, ERROR, to_pigeonhole
from .base import Entry, Item, Reader, Skip

__all__ = ["MonitioReader"]


class MonitioReader(Reader):
    name = "monitio"
    app_label = "monitio"
    tables = ("monitio_monit",)
    wanted = (
        "id",
        "user_id",
        "from_user_id",
        "subject",
        "message",
        "level",
        "extra_tags",
        "created",
        "modified",
        "read",
        "expires",
        "close_timeout",
        "url",
    )

    def convert(self, rows: list[dict[str, Any]]) -> list[Item | Skip]:
        converted: list[Item | Skip] = []
        for row in rows:
            level = int(row["level"])
            if row["user_id"] is None:
                converted.append(Skip(row["id"], "no recipient"))
                continue
            if not DEBUG <= level <= ERROR:
                # Django's own levels: monitio deleted these once shown.
                converted.append(Skip(row["id"], "not persistent (shown once)"))
                continue
            created = self.when(row["created"])
            read_at = (self.when(row.get("modified")) or created) if row["read"] else None
            converted.append(
                Item(
                    source_id=row["id"],
                    level=to_pigeonhole(level),
                    message=row["message"],
                    subject=row.get("subject") or "",
                    extra_tags=row["extra_tags"] or "",
                    url=row.get("url") or "",
                    from_user_id=row.get("from_user_id"),
                    close_timeout=row.get("close_timeout"),
                    created=created,
                    expires=self.when(row.get("expires")),
                    entries=[Entry(user_id=row["user_id"], read_at=read_at)],
                )
            )
        return converted
