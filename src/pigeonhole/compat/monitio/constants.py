"""
django-monitio's levels: its own numbers, a hundred above Django's.

pigeonhole stores them under its persistent levels (``to_pigeonhole``), so
they count, filter and render like every other stored message.
"""

from __future__ import annotations

from ... import constants as _levels

__all__ = [
    "DEBUG",
    "DEFAULT_TAGS",
    "ERROR",
    "INFO",
    "PERSISTENT_MESSAGE_LEVELS",
    "SUCCESS",
    "WARNING",
    "to_pigeonhole",
]

DEBUG = 110
INFO = 120
SUCCESS = 125
WARNING = 130
ERROR = 140

DEFAULT_TAGS = {
    INFO: "info",
    SUCCESS: "success",
    WARNING: "warning",
    ERROR: "error",
}

PERSISTENT_MESSAGE_LEVELS = (INFO, SUCCESS, WARNING, ERROR)

_TO_PIGEONHOLE = {
    DEBUG: _levels.PERSISTENT_DEBUG,
    INFO: _levels.PERSISTENT_INFO,
    SUCCESS: _levels.PERSISTENT_SUCCESS,
    WARNING: _levels.PERSISTENT_WARNING,
    ERROR: _levels.PERSISTENT_ERROR,
}


def to_pigeonhole(level: int) -> int:
    """Return pigeonhole's level for a monitio level; other levels are unchanged."""
    return _TO_PIGEONHOLE.get(level, level)
