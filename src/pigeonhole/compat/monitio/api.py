"""
monitio's ``api`` module, with its signatures; the package re-exports it.

``from monitio import api`` becomes ``from pigeonhole.compat.monitio import api``,
so the README's background-task code runs unchanged::

    api.create_message(user, monitio.INFO, "Your export is ready", subject="Export")
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from ... import api as pigeonhole_api
from ...message import StickyMessage, StoredMessage
from . import constants

__all__ = [
    "add_message",
    "create_message",
    "debug",
    "error",
    "info",
    "success",
    "warning",
]


def _options(
    subject: str,
    email: bool,
    from_user: object,
    expires: object,
    close_timeout: object,
    url: object,
) -> dict[str, Any]:
    # monitio's ``email=False`` meant "no email"; pigeonhole's None defers to EMAIL_LEVELS.
    return {
        "subject": subject or "",
        "email": True if email else None,
        "from_user": from_user,
        "expires": expires,
        "close_timeout": close_timeout,
        "url": url or "",
    }


def add_message(
    request: HttpRequest,
    level: int,
    message: object,
    extra_tags: str = "",
    fail_silently: bool = False,
    subject: str = "",
    user: object = None,
    email: bool = False,
    sse: bool = False,
    from_user: object = None,
    expires: object = None,
    close_timeout: object = None,
    url: object = None,
) -> StoredMessage | StickyMessage | None:
    """Add a message for the request's user, or for ``user``; return the stored one."""
    return pigeonhole_api.add_message(
        request,
        constants.to_pigeonhole(level),
        message,
        extra_tags,
        fail_silently,
        user=user,
        **_options(subject, email, from_user, expires, close_timeout, url),
    )


debug, info, success, warning, error = pigeonhole_api.level_shortcuts(
    add_message,
    (constants.DEBUG, constants.INFO, constants.SUCCESS, constants.WARNING, constants.ERROR),
    "Add a persistent message with monitio's level {level}.",
)


def create_message(
    to_user: object,
    level: int,
    message: object,
    from_user: object = None,
    extra_tags: str = "",
    subject: str = "",
    expires: object = None,
    close_timeout: object = None,
    sse: bool = False,
    email: bool = False,
    url: object = None,
) -> Any:  # the store's content record
    """Store a message for ``to_user`` with no request: from tasks, commands and tests."""
    return pigeonhole_api.send(
        to_user,
        message,
        level=constants.to_pigeonhole(level),
        extra_tags=extra_tags,
        **_options(subject, email, from_user, expires, close_timeout, url),
    )
