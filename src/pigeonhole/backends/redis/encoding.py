"""
How entries and contents are written into Redis hashes, and read back.

Times are epoch seconds written by Python with every microsecond (``ts()``),
so Redis can sort and compare them and they come back exactly (``dt()``).
Empty content fields are left out of the hash: absent means empty.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import MISSING, fields
from datetime import UTC, datetime
from typing import Any, get_type_hints

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from ...message import Content, NewMessage, StoredMessage

__all__ = [
    "CONTENT_KINDS",
    "ENTRY_FIELDS",
    "content_fields",
    "decode_content",
    "decode_entry",
    "dt",
    "ts",
]

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


class Kind(enum.Enum):
    """How a content field is written into the hash, from its type in ``Content``."""

    #: Text, written as it is; absent when empty, so a plain message costs little.
    TEXT = "text"
    #: True as ``"1"``; absent when False.
    FLAG = "flag"
    #: Anything else as JSON; absent when None.
    JSON = "json"


def kind_of(hint: object) -> Kind:
    """Return the ``Kind`` of a content field annotated ``hint``."""
    if hint is str or hint == str | None:
        return Kind.TEXT
    if hint is bool:
        return Kind.FLAG
    return Kind.JSON


#: ``{content field: its Kind}``, derived from ``Content``: a field added there
#: is written and read back here with no change to this module.
CONTENT_KINDS: dict[str, Kind] = {
    name: kind_of(hint) for name, hint in get_type_hints(Content).items()
}

#: What an absent field reads as: the field's default, else empty text or None.
_ABSENT: dict[str, Any] = {
    f.name: (
        f.default
        if f.default is not MISSING
        else ("" if CONTENT_KINDS[f.name] is Kind.TEXT else None)
    )
    for f in fields(Content)
}


def content_fields(message: NewMessage, created: datetime) -> list[str]:
    """
    Return the content hash as field/value pairs, leaving out empty fields.

    Absent means empty, so a plain message costs only the fields it uses.
    """
    hashed: dict[str, str] = {"created": ts(created)}
    for name, kind in CONTENT_KINDS.items():
        value = getattr(message, name)
        if kind is Kind.JSON:
            if value is not None:
                hashed[name] = dumps(value)
        elif value:
            hashed[name] = "1" if kind is Kind.FLAG else str(value)
    if message.expires is not None:
        hashed["expires"] = ts(message.expires)
    return [item for pair in hashed.items() for item in pair]


def decode_content(content: dict[str, str]) -> dict[str, Any]:
    """Return the content fields of a content hash, as ``StoredMessage`` takes them."""
    values: dict[str, Any] = {}
    for name, kind in CONTENT_KINDS.items():
        raw = content.get(name)
        if raw is None:
            values[name] = _ABSENT[name]
        elif kind is Kind.TEXT:
            values[name] = raw
        else:
            values[name] = raw == "1" if kind is Kind.FLAG else json.loads(raw)
    return values


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
    state = dict(zip(ENTRY_FIELDS, entry, strict=True))
    content = dict(zip(flat[::2], flat[1::2], strict=True))
    return StoredMessage(
        **decode_content(content),
        id=int(entry_id),
        message_id=int(state["m"]),
        user_id=user_id,
        created=dt(state["c"]),
        read_at=dt(state["r"]),
        archived_at=dt(state["a"]),
        emailed_at=dt(state["e"]),
        expires=dt(state["x"]),
        count=int(state["k"] or 1),
        senders=_senders(state["f"], content),
        seen_at=dt(state["n"]),
        saved_at=dt(state["s"]),
    )
