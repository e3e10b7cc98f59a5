"""
Receivers that keep the store in step with the rest of the site.

Connected in ``PigeonholeConfig.ready()``, never at import time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import transaction

from . import service
from .exceptions import BackendUnavailable

__all__ = ["drop_history_of_deleted_rows", "forget_deleted_user", "history_gone"]

logger = logging.getLogger("pigeonhole")

#: Set while deleting messages known to hold no history (see ``history_gone()``).
_history_gone: ContextVar[bool] = ContextVar("pigeonhole_history_gone", default=False)


@contextmanager
def history_gone() -> Iterator[None]:
    """
    Delete messages inside this block without looking for their thread history.

    For callers that know the messages have none left, such as purge, which
    deletes only messages no row and no history holds: the receiver would
    run a statement per message to find nothing.
    """
    token = _history_gone.set(True)
    try:
        yield
    finally:
        _history_gone.reset(token)


def forget_deleted_user(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
    """
    Delete a deleted user's entries from a store the database cannot cascade into.

    It waits for the deletion to commit, since a rolled-back deletion leaves the
    user, and their messages, in place. If the store is down the entries stay
    behind, logged with the call that removes them later.
    """
    backend = service.store()
    if backend.forgets_with_user:
        return
    user_id = instance.pk

    def forget() -> None:
        try:
            backend.forget_user(user_id)
        except BackendUnavailable:
            logger.exception(
                "Could not delete the messages of deleted user %s; run "
                "pigeonhole.conf.get_backend().forget_user(%r) once the store is back.",
                user_id,
                user_id,
            )

    transaction.on_commit(forget, using=using)


def drop_history_of_deleted_rows(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
    """
    Delete the thread history of the rows that go with a deleted message.

    A thread's history goes with its row. The store's own deletes and purge
    see to that; a message deleted through Django (the admin, a queryset)
    takes its rows with it by cascade, which knows nothing of threads. Left
    behind, that history would reappear under the thread's next row, in
    ``thread_messages()`` and, on some databases, in its count and senders.
    (The message's own folded entries go by cascade.)
    """
    thread = instance.thread
    if not thread or _history_gone.get():
        return
    from .models import FoldedEntry, InboxEntry

    rows = InboxEntry.objects.using(using).filter(message_id=instance.pk)
    # Before the cascade, while this message's rows of the thread are still there.
    FoldedEntry.objects.using(using).filter(
        thread=thread, user_id__in=rows.values("user_id")
    ).delete()
