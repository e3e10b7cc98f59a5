"""
How entries and contents are written into Redis hashes, and read back.

Times are epoch seconds written by Python with every microsecond (``ts()``),
so Redis can sort and compare them and they come back exactly (``dt()``).
Empty content fields are left out of the hash: absent means empty.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from ...message import NewMessage, StoredMessage

__all__ = ["ENTRY_FIELDS", "content_fields", "decode_entry", "dt", "ts"]

#: Fields of an entry hash, in the order every script reads them: user, content
#: (message) id, created, read, archived, emailed, expires, seen, saved, folded
#: into a newer row of its thread, count and senders of a thread's row.
ENTRY_FIELDS = ("u", "m", "c", "r", "a", "e", "x", "n", "s", "o", "k", "f")


def ts(value: datetime) -> str:
    """
    Return ``value`` as epoch seconds, the form Redis sorts and compares.

    ``repr()`` of the float keeps every microsecond: a float's spacing stays
    below half a microsecond until 2106, so the datetime comes back exact.
    """
    if timezone.is_naive(value):
        # What the ORM does with naive values when USE_TZ is off.
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return repr(value.timestamp())


def dt(raw: str | None) -> datetime | None:
    """Return epoch seconds as the datetime the database backend would return."""
    if not raw:
        return None
    value = datetime.fromtimestamp(float(raw), tz=UTC)
    if not settings.USE_TZ:
        value = timezone.make_naive(value, timezone.get_default_timezone())
    return value


def dumps(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"))


def content_fields(message: NewMessage, created: datetime) -> list[str]:
    """
    Return the content hash as field/value pairs, leaving out empty fields.

    Absent means empty, so a plain message costs only the fields it uses.
    """
    fields: dict[str, str] = {"level": str(int(message.level)), "created": ts(created)}
    for name in (
        "message",
        "subject",
        "extra_tags",
        "url",
        "target_object_id",
        "category",
        "thread",
        "reason",
    ):
        if value := getattr(message, name):
            fields[name] = str(value)
    if message.safe:
        fields["safe"] = "1"
    for name in (
        "data",
        "from_user_id",
        "target_content_type_id",
        "in_reply_to_id",
        "close_timeout",
        "email",
    ):
        value = getattr(message, name)
        if value is not None:
            fields[name] = dumps(value)
    if message.expires is not None:
        fields["expires"] = ts(message.expires)
    return [item for pair in fields.items() for item in pair]


def _load(content: dict[str, str], name: str) -> Any:
    raw = content.get(name)
    return None if raw is None else json.loads(raw)


def _senders(raw: str | None, content: dict[str, str]) -> list[Any]:
    """
    Return a row's senders: its ``f`` field (JSON values, one a line, newest
    first), or without one the sender of its own content.
    """
    if raw is not None:
        return [json.loads(token) for token in raw.split("\n") if token]
    sender = _load(content, "from_user_id")
    return [] if sender is None else [sender]


def decode_entry(user_id: Any, row: Sequence[Any]) -> StoredMessage:
    """Return the ``StoredMessage`` of a script's row: the entry id, its fields, its content's."""
    entry_id, entry, flat = row
    fields = dict(zip(ENTRY_FIELDS, entry, strict=True))
    content = dict(zip(flat[::2], flat[1::2], strict=True))
    return StoredMessage(
        id=int(entry_id),
        message_id=int(fields["m"]),
        user_id=user_id,
        created=dt(fields["c"]),
        read_at=dt(fields["r"]),
        archived_at=dt(fields["a"]),
        emailed_at=dt(fields["e"]),
        expires=dt(fields["x"]),
        level=int(content["level"]),
        message=content.get("message", ""),
        extra_tags=content.get("extra_tags", ""),
        subject=content.get("subject", ""),
        url=content.get("url", ""),
        data=_load(content, "data"),
        safe=content.get("safe") == "1",
        from_user_id=_load(content, "from_user_id"),
        target_content_type_id=_load(content, "target_content_type_id"),
        target_object_id=content.get("target_object_id", ""),
        in_reply_to_id=_load(content, "in_reply_to_id"),
        close_timeout=_load(content, "close_timeout"),
        category=content.get("category"),
        email=_load(content, "email"),
        thread=content.get("thread"),
        reason=content.get("reason", ""),
        count=int(fields["k"] or 1),
        senders=_senders(fields["f"], content),
        seen_at=dt(fields["n"]),
        saved_at=dt(fields["s"]),
    )
