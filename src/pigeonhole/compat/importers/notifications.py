"""
django-notifications-hq and -community: ``notifications_notification``.

A notification reads "actor verb [action object] [on] [target]"; that sentence
becomes the text (the subject, when there is a description, which becomes the
text). An actor that is a user becomes the sender, the target the message's
target and its thread (a recipient's notifications about one object become
one inbox row), the verb the reason (``"commented on"`` is
``"commented-on"``), and ``data`` is kept, with its ``url`` if it has one.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.utils.text import slugify

from ...constants import (
    PERSISTENT_ERROR,
    PERSISTENT_INFO,
    PERSISTENT_SUCCESS,
    PERSISTENT_WARNING,
)
from .base import Entry, Item, Reader, Skip

__all__ = ["NotificationsReader"]

LEVELS = {
    "success": PERSISTENT_SUCCESS,
    "info": PERSISTENT_INFO,
    "warning": PERSISTENT_WARNING,
    "error": PERSISTENT_ERROR,
}
_OBJECTS = ("actor", "target", "action_object")


class NotificationsReader(Reader):
    name = "notifications"
    tables = ("notifications_notification",)
    wanted = (
        "id",
        "level",
        "recipient_id",
        "unread",
        "verb",
        "description",
        "timestamp",
        "deleted",
        "emailed",
        "data",
        *(f"{name}_{suffix}" for name in _OBJECTS for suffix in ("content_type_id", "object_id")),
    )

    def _names(self, rows: list[dict[str, Any]]) -> dict[tuple[Any, str], str]:
        """Return ``str()`` of every actor, target and action object, a query per type."""
        wanted: dict[Any, set[str]] = defaultdict(set)
        for row in rows:
            for name in _OBJECTS:
                if row.get(f"{name}_content_type_id"):
                    wanted[row[f"{name}_content_type_id"]].add(str(row[f"{name}_object_id"]))
        names: dict[tuple[Any, str], str] = {}
        for type_id, object_ids in wanted.items():
            content_type = ContentType.objects.get_for_id(type_id)
            model = content_type.model_class()
            try:
                found = model._default_manager.in_bulk(list(object_ids)) if model else {}
            except (ValueError, ValidationError):
                found = {}  # ids the model's key cannot hold: named from their type below
            for object_id in object_ids:
                obj = found.get(object_id) or found.get(_as_int(object_id))
                names[type_id, object_id] = (
                    str(obj) if obj is not None else f"{content_type.model} {object_id}"
                )
        return names

    def convert(self, rows: list[dict[str, Any]]) -> list[Item | Skip]:
        names = self._names(rows)
        user_type = ContentType.objects.get_for_model(get_user_model())
        converted: list[Item | Skip] = []
        for row in rows:
            if row.get("deleted"):
                converted.append(Skip(row["id"], "deleted (soft delete)"))
                continue

            def name(kind: str, row: dict[str, Any] = row) -> str | None:
                type_id = row.get(f"{kind}_content_type_id")
                return names.get((type_id, str(row[f"{kind}_object_id"]))) if type_id else None

            # The wording of the library's own ``Notification.__str__``, less "ago".
            target, action_object = name("target"), name("action_object")
            parts = [name("actor"), row["verb"], action_object]
            if target:
                parts += ["on", target] if action_object else [target]
            sentence = " ".join(filter(None, parts))
            data = self.json(row.get("data"))
            if data in (None, ""):
                data = {}
            elif not isinstance(data, dict):
                data = {"data": data}
            url = data.get("url") if isinstance(data.get("url"), str) else ""
            description = row.get("description") or ""
            timestamp = self.when(row["timestamp"])
            actor_is_user = row["actor_content_type_id"] == user_type.pk
            thread = None
            if row.get("target_content_type_id"):
                target_type = ContentType.objects.get_for_id(row["target_content_type_id"])
                key = f"{target_type.app_label}.{target_type.model}:{row['target_object_id']}"
                thread = key[:200]
            converted.append(
                Item(
                    source_id=row["id"],
                    level=LEVELS.get(str(row.get("level") or "info"), PERSISTENT_INFO),
                    message=description or sentence,
                    subject=sentence if description else "",
                    url=url,
                    data={**data, "verb": row["verb"]},
                    from_user_id=_as_int(row["actor_object_id"]) if actor_is_user else None,
                    target_content_type_id=row.get("target_content_type_id"),
                    target_object_id=str(row.get("target_object_id") or ""),
                    created=timestamp,
                    reason=_reason(row["verb"]),
                    thread=thread,
                    entries=[
                        Entry(
                            user_id=row["recipient_id"],
                            # The library kept no read time; the timestamp stands in.
                            read_at=None if row["unread"] else timestamp,
                            emailed_at=timestamp if row.get("emailed") else None,
                        )
                    ],
                )
            )
        return converted


def _reason(verb: Any) -> str:
    """Return the verb as a reason slug (``[a-z0-9_-]{1,32}``), or "" if nothing is left."""
    slug = "".join(
        c for c in slugify(str(verb or "")) if c in "abcdefghijklmnopqrstuvwxyz0123456789_-"
    )
    return slug[:32].strip("-_")


def _as_int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value
