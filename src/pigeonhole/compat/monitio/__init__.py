"""
django-monitio on pigeonhole.

``import monitio`` becomes ``from pigeonhole.compat import monitio``; the
functions keep monitio's signatures::

    monitio.add_message(request, monitio.WARNING, "Stored till removed.")
    monitio.info(request, "Hi Sally", subject="Success message", user=sally)
    monitio.create_message(sally, monitio.INFO, "From a task")

Its levels (120, ...) are stored as pigeonhole's persistent levels (21, ...),
so a stored message reads back with ``level == 21`` and ``level_tag == "info"``.
``sse=`` is accepted and ignored: pigeonhole delivers every stored message live.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from ... import api
from ..shortcuts import level_shortcut
from . import constants
from .constants import *  # noqa: F403 - the library's names, re-exported as it did

__all__ = [
    *constants.__all__,
    "add_message",
    "create_message",
    "debug",
    "error",
    "info",
    "success",
    "warning",
]


def _options(
    subject: str, email: bool, from_user: Any, expires: Any, close_timeout: Any, url: Any
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
    message: Any,
    extra_tags: str = "",
    fail_silently: bool = False,
    subject: str = "",
    user: Any = None,
    email: bool = False,
    sse: bool = False,
    from_user: Any = None,
    expires: Any = None,
    close_timeout: Any = None,
    url: Any = None,
) -> Any:
    """Add a message for the request's user, or for ``user``; return the stored one."""
    return api.add_message(
        request,
        constants.to_pigeonhole(level),
        message,
        extra_tags,
        fail_silently,
        user=user,
        **_options(subject, email, from_user, expires, close_timeout, url),
    )


def _shortcut(level: int, name: str):
    return level_shortcut(
        add_message, level, name, f"Add a persistent message with monitio's level {level}."
    )


debug = _shortcut(constants.DEBUG, "debug")
info = _shortcut(constants.INFO, "info")
success = _shortcut(constants.SUCCESS, "success")
warning = _shortcut(constants.WARNING, "warning")
error = _shortcut(constants.ERROR, "error")


def create_message(
    to_user: Any,
    level: int,
    message: Any,
    from_user: Any = None,
    extra_tags: str = "",
    subject: str = "",
    expires: Any = None,
    close_timeout: Any = None,
    sse: bool = False,
    email: bool = False,
    url: Any = None,
) -> Any:
    """Store a message for ``to_user`` with no request: from tasks, commands and tests."""
    return api.send(
        to_user,
        message,
        level=constants.to_pigeonhole(level),
        extra_tags=extra_tags,
        **_options(subject, email, from_user, expires, close_timeout, url),
    )
