"""
Signals sent after a change is committed.

Each is sent with ``sender`` set to the backend class. Handlers run after the
database transaction commits (``transaction.on_commit``), so they never act on
a message that a rollback removes.
"""

from django.dispatch import Signal

__all__ = [
    "message_archived",
    "message_deleted",
    "message_read",
    "message_saved",
    "message_seen",
    "message_sent",
    "message_unarchived",
    "message_unread",
    "message_unsaved",
    "thread_muted",
    "thread_unmuted",
]

#: ``message`` (the backend's record, with ``id`` and ``recipient_count``) and
#: ``recipients`` (a ``Recipients``: ``.iter_ids()`` yields user ids in chunks).
message_sent = Signal()
#: ``user`` and ``ids`` (inbox entry ids that changed) for the four below.
message_read = Signal()
message_unread = Signal()
message_archived = Signal()
message_unarchived = Signal()
message_deleted = Signal()
#: ``user`` and ``ids`` too: entries the user was shown (``mark_seen()``), and
#: entries saved or unsaved.
message_seen = Signal()
message_saved = Signal()
message_unsaved = Signal()
#: ``user`` and ``thread`` (the thread's key) for the two below.
thread_muted = Signal()
thread_unmuted = Signal()
