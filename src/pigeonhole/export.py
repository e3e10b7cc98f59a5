"""
A user's stored data as one JSON document, for personal-data requests.

``export_user()`` and ``manage.py pigeonhole_export`` build it here. Every
value is a JSON type already (times as ISO 8601 strings), so the document can
be written with ``json.dumps`` as it is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from .message import StoredMessage
from .validation import user_id

__all__ = ["export_document"]

#: The attributes of each exported entry, in order.
ENTRY_FIELDS = (
    "id",
    "message_id",
    "thread",
    "reason",
    "category",
    "level",
    "subject",
    "message",
    "extra_tags",
    "url",
    "data",
    "from_user_id",
    "in_reply_to_id",
    "created",
    "expires",
    "read_at",
    "seen_at",
    "saved_at",
    "archived_at",
    "emailed_at",
    "count",
    "senders",
)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_json(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str | dict):
        return value
    return str(value)


def entry_to_export(entry: StoredMessage) -> dict[str, Any]:
    """Return every stored attribute of one entry, the content's included."""
    values = {name: getattr(entry, name) for name in ENTRY_FIELDS}
    values["message"] = str(entry.message)
    return {name: _json(value) for name, value in values.items()}


def export_document(backend: Any, user: Any) -> dict[str, Any]:
    """Return the export of ``user``: entries, preferences and muted threads."""
    from .models import Preference

    uid = user_id(user)
    preferences = Preference.objects.filter(user_id=uid).order_by("category", "channel")
    return {
        "user": {"id": _json(uid), "username": user.get_username()},
        "exported_at": timezone.now().isoformat(),
        "entries": [entry_to_export(entry) for entry in backend.export_entries(uid)],
        "preferences": [
            {
                "category": pref.category,
                "channel": pref.channel,
                "enabled": pref.enabled,
                "updated": _json(pref.updated),
            }
            for pref in preferences
        ],
        "muted_threads": backend.muted_threads(uid),
    }
