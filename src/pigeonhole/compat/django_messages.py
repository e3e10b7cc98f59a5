"""
Django's own ``messages`` API, which the older libraries' packages also carried.

``stored_messages`` and ``messages_extends`` re-export it, so a project that
called ``stored_messages.info(request, ...)`` for a one-off message keeps working.
"""

from __future__ import annotations

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

__all__ = [
    "MessageFailure",
    "debug",
    "error",
    "get_level",
    "get_messages",
    "info",
    "set_level",
    "success",
    "warning",
]
