"""
``PIGEONHOLE`` settings that reproduce each older library's behaviour.

Plain numbers and dicts only, so a settings module can import them::

    from pigeonhole.compat.presets import MESSAGES_EXTENDS

    PIGEONHOLE = {**MESSAGES_EXTENDS, "BACKEND": ...}

The level numbers are spelled out rather than imported from the compat
modules, which load Django's messages framework and cannot be imported
before settings are ready.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DRF_MESSAGES", "MESSAGES_EXTENDS", "MONITIO", "STORED_MESSAGES"]

_PLAIN = (10, 20, 25, 30, 40)
_PERSISTENT = (11, 21, 26, 31, 41)

#: django-stored-messages: ``STORED_*`` levels are stored, and shown once:
#: iterating the messages marks them read.
STORED_MESSAGES: dict[str, Any] = {
    "STORE_LEVELS": _PERSISTENT,
    "READ_ON_DISPLAY": True,
}

#: django-messages-extends: ``*_PERSISTENT`` levels stay until the user closes
#: them, and a persistent level for an anonymous user raises ``NotImplementedError``.
MESSAGES_EXTENDS: dict[str, Any] = {
    "STORE_LEVELS": _PERSISTENT,
    "READ_ON_DISPLAY": False,
    "ANONYMOUS": "raise",
}

#: drf-messages: every message of a logged-in user is stored and marked read
#: when displayed; ``MESSAGES_ALLOW_DELETE_UNREAD`` and ``MESSAGES_DELETE_READ``
#: become ``ALLOW_DELETE_UNREAD`` and ``DELETE_READ`` (both off, as there).
DRF_MESSAGES: dict[str, Any] = {
    "STORE_LEVELS": _PLAIN + _PERSISTENT,
    "READ_ON_DISPLAY": True,
    "ALLOW_DELETE_UNREAD": False,
    "DELETE_READ": False,
}

#: django-monitio: its levels (120, 125, 130, 140) are stored under
#: pigeonhole's persistent levels and stay until marked read; monitio's views
#: deleted messages whatever their state, hence ``ALLOW_DELETE_UNREAD``.
MONITIO: dict[str, Any] = {
    "STORE_LEVELS": _PERSISTENT,
    "READ_ON_DISPLAY": False,
    "ANONYMOUS": "raise",
    "ALLOW_DELETE_UNREAD": True,
}
