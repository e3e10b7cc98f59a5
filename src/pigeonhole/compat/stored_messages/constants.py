"""
django-stored-messages' levels: Django's, plus ``STORED_*`` one above each.

``STORED_*`` are pigeonhole's ``PERSISTENT_*``. The library patched its tags
into Django's ``DEFAULT_TAGS`` on import; pigeonhole patches nothing, so a site
that relied on them puts ``DEFAULT_TAGS`` in ``MESSAGE_TAGS``.
"""

from __future__ import annotations

from django.contrib.messages import constants as _django

from ...constants import STORED_DEBUG, STORED_ERROR, STORED_INFO, STORED_SUCCESS, STORED_WARNING

__all__ = [
    "DEBUG",
    "DEFAULT_LEVELS",
    "DEFAULT_TAGS",
    "ERROR",
    "INFO",
    "STORED_DEBUG",
    "STORED_ERROR",
    "STORED_INFO",
    "STORED_SUCCESS",
    "STORED_WARNING",
    "SUCCESS",
    "WARNING",
]

DEBUG = _django.DEBUG
INFO = _django.INFO
SUCCESS = _django.SUCCESS
WARNING = _django.WARNING
ERROR = _django.ERROR
DEFAULT_LEVELS = _django.DEFAULT_LEVELS

#: Django's tags and the library's ``"persisted <level>"`` ones, as it had them.
DEFAULT_TAGS = {
    **_django.DEFAULT_TAGS,
    STORED_DEBUG: "persisted debug",
    STORED_INFO: "persisted info",
    STORED_SUCCESS: "persisted success",
    STORED_WARNING: "persisted warning",
    STORED_ERROR: "persisted error",
}
