"""
Turn the app's signals into wake-ups for the configured broker.

The signals are sent once the transaction commits (see ``api``), so a wake-up
never announces a change that a rollback then removes. ``connect()`` is
called from ``AppConfig.ready()``; nothing here runs at import time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .. import constants, signals
from ..backends.base import BaseBackend
from ..conf import get_broker
from .base import Sent, WakeUp

__all__ = ["connect", "publish_change", "publish_sent", "publish_thread_change"]

_CHANGES = {
    signals.message_read: constants.EVENT_READ,
    signals.message_unread: constants.EVENT_UNREAD,
    signals.message_archived: constants.EVENT_ARCHIVED,
    signals.message_unarchived: constants.EVENT_UNARCHIVED,
    signals.message_deleted: constants.EVENT_DELETED,
    signals.message_seen: constants.EVENT_SEEN,
    signals.message_saved: constants.EVENT_SAVED,
    signals.message_unsaved: constants.EVENT_UNSAVED,
}
_THREAD_CHANGES = {
    signals.thread_muted: constants.EVENT_MUTED,
    signals.thread_unmuted: constants.EVENT_UNMUTED,
}


def publish_sent(sender: Any, message: Any, recipients: Any, **kwargs: Any) -> None:
    """
    Announce a new message once for all its recipients.

    The entry ids are not known per recipient here (a send copies recipients
    inside the database), and need not be: each process reads the entries of
    its own streams' users in one go. Recipients given as ids are listed, so a
    process with none of them reads nothing; a Group or a QuerySet is not even
    evaluated, and each process asks the store which of its streams it reached.
    """
    broker = get_broker()
    # Only streams in this process can hear an in-process broker: skip the
    # recipients query altogether when there are none, as on every WSGI server.
    if getattr(broker, "local_only", False) and not broker.subscriber_count():
        return
    # The sender is the class of the store that kept the message.
    if getattr(sender, "deliveries", BaseBackend.deliveries) is BaseBackend.deliveries:
        # A store that cannot read many users' entries at once: each stream reads.
        broker.publish(_wakeups_for(recipients))
        return
    user_ids = None if recipients.queryset is not None else tuple(recipients.ids)
    broker.publish([Sent(message.id, user_ids)])


def _wakeups_for(recipients: Any) -> Iterator[WakeUp]:
    for chunk in recipients.iter_ids():
        for user_id in chunk:
            yield WakeUp(user_id, constants.EVENT_MESSAGE)


def publish_change(sender: Any, signal: Any, user: Any, ids: Iterable[Any], **kwargs: Any) -> None:
    """Tell the user's streams which entries changed state, and how."""
    _publish_to(user, _CHANGES[signal], tuple(ids))


def publish_thread_change(sender: Any, signal: Any, user: Any, thread: str, **kwargs: Any) -> None:
    """Tell the user's streams that a thread was muted or unmuted; its key rides in ``ids``."""
    _publish_to(user, _THREAD_CHANGES[signal], (thread,))


def _publish_to(user: Any, event: str, ids: tuple[Any, ...]) -> None:
    broker = get_broker()
    user_id = getattr(user, "pk", user)
    if getattr(broker, "local_only", False) and not broker.subscriber_count(user_id):
        return
    broker.publish([WakeUp(user_id, event, ids)])


def connect() -> None:
    """Connect the receivers; ``dispatch_uid`` makes a second call harmless."""
    signals.message_sent.connect(publish_sent, dispatch_uid="pigeonhole.brokers.sent")
    for signal, event in _CHANGES.items():
        signal.connect(publish_change, dispatch_uid=f"pigeonhole.brokers.{event}")
    for signal, event in _THREAD_CHANGES.items():
        signal.connect(publish_thread_change, dispatch_uid=f"pigeonhole.brokers.{event}")
