"""
drf-messages on pigeonhole.

The library's manager methods become functions here::

    from pigeonhole.compat import drf_messages

    drf_messages.create_user_message(user, "Export ready", messages.INFO)
    drf_messages.create_message(request, "Saved", messages.SUCCESS, ["form"])

Its endpoints are in ``pigeonhole.compat.drf_messages.urls``, its storage in
``pigeonhole.compat.drf_messages.storage.DBStorage``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from ... import api

__all__ = ["create_message", "create_user_message"]


def create_message(request: HttpRequest, message: Any, level: int, extra_tags: Any = None) -> Any:
    """
    Store a message for the request's user; ``extra_tags`` is a string or a list.

    Return the stored message. An anonymous request gets a message shown once
    (or ``PersistenceUnavailable`` with ``ANONYMOUS = "raise"``).
    """
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return api.add_message(request, level, message, extra_tags or "", user=user)
    return api.add_message(request, level, message, extra_tags or "")


def create_user_message(user: Any, message: Any, level: int, extra_tags: Any = None) -> Any:
    """Store a message for ``user`` without a request, from tasks and commands."""
    return api.send(user, message, level=level, extra_tags=extra_tags or "")
