"""django-messages-extends' levels: persistent is Django's level + 1, sticky + 2."""

from __future__ import annotations

from ... import constants as _levels

__all__ = [
    "DEBUG",
    "DEBUG_PERSISTENT",
    "DEBUG_STICKY",
    "DEFAULT_TAGS",
    "ERROR",
    "ERROR_PERSISTENT",
    "ERROR_STICKY",
    "INFO",
    "INFO_PERSISTENT",
    "INFO_STICKY",
    "PERSISTENT_MESSAGE_LEVELS",
    "STICKY_MESSAGE_LEVELS",
    "SUCCESS",
    "SUCCESS_PERSISTENT",
    "SUCCESS_STICKY",
    "WARNING",
    "WARNING_PERSISTENT",
    "WARNING_STICKY",
]

DEBUG = _levels.DEBUG
INFO = _levels.INFO
SUCCESS = _levels.SUCCESS
WARNING = _levels.WARNING
ERROR = _levels.ERROR

DEBUG_PERSISTENT = _levels.PERSISTENT_DEBUG
INFO_PERSISTENT = _levels.PERSISTENT_INFO
SUCCESS_PERSISTENT = _levels.PERSISTENT_SUCCESS
WARNING_PERSISTENT = _levels.PERSISTENT_WARNING
ERROR_PERSISTENT = _levels.PERSISTENT_ERROR

DEBUG_STICKY = _levels.STICKY_DEBUG
INFO_STICKY = _levels.STICKY_INFO
SUCCESS_STICKY = _levels.STICKY_SUCCESS
WARNING_STICKY = _levels.STICKY_WARNING
ERROR_STICKY = _levels.STICKY_ERROR

#: The library's tags. It patched them into Django's ``DEFAULT_TAGS`` on import;
#: pigeonhole patches nothing: a site that relied on them puts them in ``MESSAGE_TAGS``.
DEFAULT_TAGS = {
    DEBUG_PERSISTENT: "debug persistent",
    INFO_PERSISTENT: "info persistent",
    SUCCESS_PERSISTENT: "success persistent",
    WARNING_PERSISTENT: "warning persistent",
    ERROR_PERSISTENT: "error persistent",
    DEBUG_STICKY: "debug sticky",
    INFO_STICKY: "info sticky",
    SUCCESS_STICKY: "success sticky",
    WARNING_STICKY: "warning sticky",
    ERROR_STICKY: "error sticky",
}

PERSISTENT_MESSAGE_LEVELS = _levels.PERSISTENT_LEVELS
STICKY_MESSAGE_LEVELS = _levels.STICKY_LEVELS
