"""
django-pigeonhole: messages that last.

``import pigeonhole`` is safe anywhere, settings files included: the levels
are plain constants, and the API functions load on first use (PEP 562), so
nothing here touches models before Django is ready.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .constants import (
    DEBUG,
    ERROR,
    INFO,
    PERSISTENT_DEBUG,
    PERSISTENT_ERROR,
    PERSISTENT_INFO,
    PERSISTENT_LEVELS,
    PERSISTENT_SUCCESS,
    PERSISTENT_WARNING,
    STICKY_DEBUG,
    STICKY_ERROR,
    STICKY_INFO,
    STICKY_LEVELS,
    STICKY_SUCCESS,
    STICKY_WARNING,
    STORED_DEBUG,
    STORED_ERROR,
    STORED_INFO,
    STORED_SUCCESS,
    STORED_WARNING,
    SUCCESS,
    WARNING,
)

if TYPE_CHECKING:
    from .api import (
        aarchive,
        abadge_count,
        add_message,
        adelete,
        aexport_user,
        ainbox,
        amark_all_read,
        amark_read,
        amark_seen,
        amark_unread,
        amute,
        amuted_threads,
        archive,
        areply,
        asave,
        asend,
        athread_messages,
        aunarchive,
        aunmute,
        aunread_count,
        aunsave,
        aunseen_count,
        badge_count,
        debug,
        delete,
        error,
        export_user,
        inbox,
        inbox_counts,
        info,
        mark_all_read,
        mark_read,
        mark_seen,
        mark_unread,
        mute,
        muted_threads,
        reply,
        save,
        send,
        success,
        thread_messages,
        unarchive,
        unmute,
        unread_count,
        unsave,
        unseen_count,
        warning,
    )

__version__ = "0.1.0.dev0"


#: The levels, then the API's functions: ``pigeonhole.api.__all__`` is the
#: lower-case part, so a new public function is named here once.
__all__ = [
    "DEBUG",
    "ERROR",
    "INFO",
    "PERSISTENT_DEBUG",
    "PERSISTENT_ERROR",
    "PERSISTENT_INFO",
    "PERSISTENT_LEVELS",
    "PERSISTENT_SUCCESS",
    "PERSISTENT_WARNING",
    "STICKY_DEBUG",
    "STICKY_ERROR",
    "STICKY_INFO",
    "STICKY_LEVELS",
    "STICKY_SUCCESS",
    "STICKY_WARNING",
    "STORED_DEBUG",
    "STORED_ERROR",
    "STORED_INFO",
    "STORED_SUCCESS",
    "STORED_WARNING",
    "SUCCESS",
    "WARNING",
    "aarchive",
    "abadge_count",
    "add_message",
    "adelete",
    "aexport_user",
    "ainbox",
    "amark_all_read",
    "amark_read",
    "amark_seen",
    "amark_unread",
    "amute",
    "amuted_threads",
    "archive",
    "areply",
    "asave",
    "asend",
    "athread_messages",
    "aunarchive",
    "aunmute",
    "aunread_count",
    "aunsave",
    "aunseen_count",
    "badge_count",
    "debug",
    "delete",
    "error",
    "export_user",
    "inbox",
    "inbox_counts",
    "info",
    "mark_all_read",
    "mark_read",
    "mark_seen",
    "mark_unread",
    "mute",
    "muted_threads",
    "reply",
    "save",
    "send",
    "success",
    "thread_messages",
    "unarchive",
    "unmute",
    "unread_count",
    "unsave",
    "unseen_count",
    "warning",
]


def __getattr__(name: str) -> Any:
    if name in __all__ and name.islower():
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'pigeonhole' has no attribute {name!r}")
