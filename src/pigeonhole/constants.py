"""
Message levels, tags and event names.

Plain levels are Django's own, so ``pigeonhole.INFO == messages.INFO``. The
persistent and sticky variants sit one and two above their base level: the
numbering django-stored-messages (``STORED_*``) and django-messages-extends
(``STICKY_*``) used, so sites migrating from them keep their stored data and
their ``MESSAGE_TAGS``.
"""

from __future__ import annotations

from django.contrib.messages.constants import DEBUG, ERROR, INFO, SUCCESS, WARNING

__all__ = [
    "BASE_LEVELS",
    "DEBUG",
    "ERROR",
    "EVENT_ARCHIVED",
    "EVENT_COUNT",
    "EVENT_DELETED",
    "EVENT_MESSAGE",
    "EVENT_MUTED",
    "EVENT_READ",
    "EVENT_RESET",
    "EVENT_SAVED",
    "EVENT_SEEN",
    "EVENT_UNARCHIVED",
    "EVENT_UNMUTED",
    "EVENT_UNREAD",
    "EVENT_UNSAVED",
    "INFO",
    "PERSISTENT_DEBUG",
    "PERSISTENT_ERROR",
    "PERSISTENT_INFO",
    "PERSISTENT_LEVELS",
    "PERSISTENT_SUCCESS",
    "PERSISTENT_TAG",
    "PERSISTENT_WARNING",
    "STICKY_DEBUG",
    "STICKY_ERROR",
    "STICKY_INFO",
    "STICKY_LEVELS",
    "STICKY_SUCCESS",
    "STICKY_TAG",
    "STICKY_WARNING",
    "STORED_DEBUG",
    "STORED_ERROR",
    "STORED_INFO",
    "STORED_SUCCESS",
    "STORED_WARNING",
    "SUCCESS",
    "WARNING",
    "base_level",
    "level_variants",
]

PERSISTENT_DEBUG = DEBUG + 1
PERSISTENT_INFO = INFO + 1
PERSISTENT_SUCCESS = SUCCESS + 1
PERSISTENT_WARNING = WARNING + 1
PERSISTENT_ERROR = ERROR + 1

# django-stored-messages' names for the same levels.
STORED_DEBUG = PERSISTENT_DEBUG
STORED_INFO = PERSISTENT_INFO
STORED_SUCCESS = PERSISTENT_SUCCESS
STORED_WARNING = PERSISTENT_WARNING
STORED_ERROR = PERSISTENT_ERROR

STICKY_DEBUG = DEBUG + 2
STICKY_INFO = INFO + 2
STICKY_SUCCESS = SUCCESS + 2
STICKY_WARNING = WARNING + 2
STICKY_ERROR = ERROR + 2

BASE_LEVELS = (DEBUG, INFO, SUCCESS, WARNING, ERROR)
PERSISTENT_LEVELS = (
    PERSISTENT_DEBUG,
    PERSISTENT_INFO,
    PERSISTENT_SUCCESS,
    PERSISTENT_WARNING,
    PERSISTENT_ERROR,
)
STICKY_LEVELS = (STICKY_DEBUG, STICKY_INFO, STICKY_SUCCESS, STICKY_WARNING, STICKY_ERROR)

# Extra words added to ``message.tags`` so templates and CSS can tell the kinds apart
# while ``level_tag`` stays the familiar ``info``/``error``.
PERSISTENT_TAG = "persistent"
STICKY_TAG = "sticky"

# Names of the live-delivery events (Server-Sent Events ``event:`` field).
EVENT_MESSAGE = "message"
EVENT_READ = "read"
EVENT_UNREAD = "unread"
EVENT_ARCHIVED = "archived"
EVENT_UNARCHIVED = "unarchived"
EVENT_DELETED = "deleted"
EVENT_SEEN = "seen"
EVENT_SAVED = "saved"
EVENT_UNSAVED = "unsaved"
# These two carry a thread key, not entry ids.
EVENT_MUTED = "muted"
EVENT_UNMUTED = "unmuted"
EVENT_COUNT = "count"
# Tells a client that what it shows may be stale beyond repair: fetch it again.
EVENT_RESET = "reset"

_BASE_OF = {
    **{level + 1: level for level in BASE_LEVELS},
    **{level + 2: level for level in BASE_LEVELS},
}


def base_level(level: int) -> int:
    """
    Return the plain Django level behind a persistent or sticky level.

    Custom levels map to themselves, so a site's own levels keep working.
    """
    return _BASE_OF.get(level, level)


def level_variants(level: int) -> tuple[int, ...]:
    """
    Return ``level`` with its persistent and sticky variants.

    Filtering an inbox by ``INFO`` should find messages sent with
    ``PERSISTENT_INFO`` too: to a reader they are all "info".
    """
    base = base_level(level)
    if base in BASE_LEVELS:
        return (base, base + 1, base + 2)
    return (level,)
