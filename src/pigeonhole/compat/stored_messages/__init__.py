"""
django-stored-messages on pigeonhole.

``import stored_messages`` becomes
``from pigeonhole.compat import stored_messages``; the rest reads as before::

    stored_messages.add_message(request, stored_messages.STORED_INFO, "Hello!")
    stored_messages.add_message_for(users, stored_messages.STORED_INFO, "Hi all")
    stored_messages.mark_read(request.user, message)

Like the library it also carries Django's ``messages`` API and levels.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.messages.api import (
    MessageFailure,
    debug,
    error,
    get_level,
    get_messages,
    info,
    set_level,
    success,
    warning,
)

from ... import api
from ...validation import build_message, check_datetime, resolve_recipients
from . import constants
from .constants import *  # noqa: F403 - the library's names, re-exported as it did

__all__ = [
    *constants.__all__,
    "MessageFailure",
    "add_message",
    "add_message_for",
    "broadcast_message",
    "constants",
    "debug",
    "error",
    "get_level",
    "get_messages",
    "info",
    "mark_all_read",
    "mark_read",
    "set_level",
    "success",
    "warning",
]

add_message = api.add_message


def add_message_for(
    users: Any,
    level: int,
    message_text: Any,
    extra_tags: str = "",
    date: Any = None,
    url: Any = None,
    fail_silently: bool = False,
) -> Any:
    """
    Send a message to ``users`` without a request, dated ``date`` if given.

    The text is written once and each user gets an inbox entry, in one
    transaction. ``fail_silently`` is accepted and unused, as in the library.
    """
    new = build_message(level, message_text, extra_tags=extra_tags, url=url or "")
    if date is not None:
        new = dataclasses.replace(new, created=check_datetime(date, "date"))
    return api._send(new, resolve_recipients(users))


def broadcast_message(
    level: int,
    message_text: Any,
    extra_tags: str = "",
    date: Any = None,
    url: Any = None,
    fail_silently: bool = False,
) -> Any:
    """Send a message to every user, the database inserting one entry per user."""
    users = get_user_model()._default_manager.all()
    return add_message_for(users, level, message_text, extra_tags, date, url, fail_silently)


def mark_read(user: Any, message: Any) -> bool:
    """
    Mark ``message`` (a stored message or its id) read for ``user``.

    Return True if it was unread. A message not in the user's inbox raises
    ``pigeonhole.exceptions.MessageNotFound``, as the library raised
    ``MessageDoesNotExist``.
    """
    return api.mark_read(user, message) > 0


def mark_all_read(user: Any) -> int:
    """Mark every stored message of ``user`` read; return how many were unread."""
    return api.mark_all_read(user)
