"""
django-stored-messages' ``api`` module: sending without a request, marking read.

``from stored_messages import api`` becomes
``from pigeonhole.compat.stored_messages import api``; the package re-exports
these functions, as the library did.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib.auth import get_user_model

from ... import api as pigeonhole_api
from ... import service
from ...validation import build_message, check_datetime, resolve_recipients

__all__ = ["add_message_for", "broadcast_message", "mark_all_read", "mark_read"]


def add_message_for(
    users: object,
    level: int,
    message_text: object,
    extra_tags: str = "",
    date: object = None,
    url: object = None,
    fail_silently: bool = False,
) -> Any:  # the store's content record
    """
    Send a message to ``users`` without a request, dated ``date`` if given.

    The text is written once and each user gets an inbox entry, in one
    transaction. ``fail_silently`` is accepted and unused, as in the library.
    """
    new = build_message(level, message_text, extra_tags=extra_tags, url=url or "")
    if date is not None:
        new = dataclasses.replace(new, created=check_datetime(date, "date"))
    return service.send(new, resolve_recipients(users))


def broadcast_message(
    level: int,
    message_text: object,
    extra_tags: str = "",
    date: object = None,
    url: object = None,
    fail_silently: bool = False,
) -> Any:  # the store's content record
    """Send a message to every user, the database inserting one entry per user."""
    users = get_user_model()._default_manager.all()
    return add_message_for(users, level, message_text, extra_tags, date, url, fail_silently)


def mark_read(user: object, message: object) -> bool:
    """
    Mark ``message`` (a stored message or its id) read for ``user``.

    Return True if it was unread. A message not in the user's inbox raises
    ``pigeonhole.exceptions.MessageNotFound``, as the library raised
    ``MessageDoesNotExist``.
    """
    return pigeonhole_api.mark_read(user, message) > 0


def mark_all_read(user: object) -> int:
    """Mark every stored message of ``user`` read; return how many were unread."""
    return pigeonhole_api.mark_all_read(user)
