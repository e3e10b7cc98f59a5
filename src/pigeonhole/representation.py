"""
The one JSON shape of a stored message.

The REST API, the live event stream and the JavaScript client all speak it, so a
message pushed over the stream can be dropped into a list fetched from the API.
It lives here, free of Django REST framework, because the stream must work
without the ``rest`` extra installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser

from .backends.base import InboxState
from .message import StoredMessage, level_tag_for

__all__ = [
    "FIELDS",
    "asenders_for",
    "count_to_dict",
    "message_to_dict",
    "recipient_fields",
    "sender_to_dict",
    "senders_for",
]

#: The keys of :func:`message_to_dict`, in order.
FIELDS = (
    "id",
    "level",
    "level_tag",
    "tags",
    "message",
    "subject",
    "url",
    "data",
    "from_user",
    "created",
    "read_at",
    "archived_at",
    "expires",
    "reason",
    "thread",
    "count",
    "senders",
    "seen",
    "saved_at",
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def sender_to_dict(user: AbstractBaseUser) -> dict[str, Any]:
    """
    Return the public face of a sender: enough to show a name, nothing private.

    ``get_username()`` and ``get_full_name()`` work with custom user models; an
    email address is deliberately left out, since any recipient would see it.
    """
    full_name = getattr(user, "get_full_name", lambda: "")() or ""
    username = user.get_username()
    return {"id": user.pk, "username": username, "name": full_name or username}


def senders_for(messages: Iterable[StoredMessage]) -> dict[Any, dict[str, Any]]:
    """
    Return the senders of ``messages`` by id, in one query whatever the page size.

    A sender who has since been deleted is absent; :func:`message_to_dict` then
    reports the message as having no sender.
    """
    ids = {m.from_user_id for m in messages if m.from_user_id is not None}
    if not ids:
        return {}
    users = get_user_model()._default_manager.filter(pk__in=ids)
    return {user.pk: sender_to_dict(user) for user in users}


async def asenders_for(messages: Iterable[StoredMessage]) -> dict[Any, dict[str, Any]]:
    """Async twin of :func:`senders_for`, for the event stream."""
    ids = {m.from_user_id for m in messages if m.from_user_id is not None}
    if not ids:
        return {}
    users = get_user_model()._default_manager.filter(pk__in=ids)
    return {user.pk: sender_to_dict(user) async for user in users}


def message_to_dict(
    message: StoredMessage, senders: Mapping[Any, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """
    Return ``message`` as JSON-ready data: times in ISO 8601, the sender expanded.

    ``senders`` comes from :func:`senders_for`; without it ``from_user`` holds
    only the sender's id, so nothing here ever queries the database per message.
    The text is returned as stored: clients insert it as text, never as HTML.
    """
    sender: dict[str, Any] | None = None
    if message.from_user_id is not None:
        sender = (senders or {}).get(message.from_user_id)
        if sender is None and senders is None:
            sender = {"id": message.from_user_id, "username": None, "name": None}
    return {
        "id": message.id,
        "level": message.level,
        "level_tag": message.level_tag,
        "tags": message.tags,
        "message": str(message.message),
        "subject": message.subject,
        "url": message.url,
        "data": message.data,
        "from_user": sender,
        "created": _iso(message.created),
        "read_at": _iso(message.read_at),
        "archived_at": _iso(message.archived_at),
        "expires": _iso(message.expires),
        "reason": message.reason,
        "thread": message.thread,
        "count": message.count,
        "senders": list(message.senders),
        "seen": message.seen,
        "saved_at": _iso(message.saved_at),
    }


def recipient_fields(message: StoredMessage) -> tuple[Any, ...]:
    """
    Return what :func:`message_to_dict` renders of the recipient's own entry, but its id.

    Entries of one content with the same fields here render the same JSON but
    for their ``id``, so a message to thousands of users is encoded once per
    process, not once per user (``pigeonhole.live.message_data()``). Whatever
    ``message_to_dict()`` renders of an entry must be here.
    """
    return (
        message.created,
        message.read_at,
        message.archived_at,
        message.expires,
        message.seen_at,
        message.saved_at,
        message.thread,
        message.count,
        tuple(message.senders),
    )


def count_to_dict(state: InboxState) -> dict[str, Any]:
    """
    Return what a badge needs from an ``InboxState``: the counts and the highest level.

    ``max_level`` is the level as stored (``PERSISTENT_ERROR`` is 41) and
    ``max_level_tag`` its tag (``"error"``); both are None when nothing is unread.
    ``unseen`` is the unread count where the store keeps no seen state.
    """
    level = state.max_level
    return {
        "unread": state.unread,
        "unseen": state.unread if state.unseen is None else state.unseen,
        "max_level": level,
        "max_level_tag": (level_tag_for(level) or None) if level is not None else None,
    }
