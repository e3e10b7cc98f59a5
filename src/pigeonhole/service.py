"""
The one door to the store: every read and change of stored messages passes here.

``pigeonhole.api`` checks what its callers pass and calls these functions; the
message storage, the views, the REST API and the compatibility layers use the
API or these functions, never the backend itself. What must surround a store
call is therefore written once: anonymous users have nothing stored, a change
is announced by its signal once the transaction commits, ``DELETE_READ``
deletes what is read, and a send schedules its email.

Arguments are already checked: entry ids are ids, a thread is its key. The
machinery that works on the store as a whole rather than on one user's inbox
(email delivery, live streams, purges) takes it from :func:`store`.

Internal: these names may change between releases; use ``pigeonhole.api``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.dispatch import Signal

from . import signals
from .backends.base import BaseBackend, InboxState, Recipients, SentMessage
from .conf import get_backend, pigeonhole_settings
from .exceptions import MessageNotFound, PersistenceUnavailable
from .message import NewMessage, StoredMessage
from .validation import build_message, user_id

__all__ = [
    "apply_read",
    "change",
    "change_thread",
    "claim_unread",
    "export_user",
    "get",
    "inbox",
    "inbox_counts",
    "inbox_state",
    "is_anonymous",
    "mark_all_read",
    "mark_seen",
    "muted_threads",
    "release_claimed",
    "send",
    "store",
    "store_for_user",
    "thread_messages",
    "tracks_versions",
    "unread_count",
    "unseen_count",
]


def store() -> BaseBackend:
    """
    Return the configured store, for the machinery that works across users.

    Email delivery, live streams, purges and the deleted-user receiver use it;
    whatever acts for one user calls the functions below instead.
    """
    return get_backend()


def tracks_versions() -> bool:
    """Return whether the store renews inbox versions, so an empty inbox may be noted."""
    return bool(getattr(get_backend(), "tracks_versions", False))


def is_anonymous(user: Any) -> bool:
    """Return whether ``user`` is None or not logged in: such users have nothing stored."""
    return user is None or not getattr(user, "is_authenticated", False)


def _owner(user: Any) -> tuple[BaseBackend, Any]:
    """Return the store and the pk of a user whose entries are read or changed one by one."""
    if is_anonymous(user):
        raise PersistenceUnavailable(
            "Anonymous users have no stored messages; check user.is_authenticated first."
        )
    return get_backend(), user_id(user)


def _announce(backend: BaseBackend, signal: Signal, user: Any, ids: Sequence[Any]) -> None:
    if ids:
        backend.on_commit(lambda: signal.send(sender=type(backend), user=user, ids=ids))


# Sending ----------------------------------------------------------------------
def send(new: NewMessage, recipients: Recipients) -> Any:
    """
    Store a checked message for checked recipients; return the store's content record.

    Users who turned the message's category inbox off, or muted its thread,
    get nothing and hear nothing. Email is scheduled and ``message_sent`` sent
    once the transaction commits.
    """
    from .categories import inbox_recipients
    from .tasks import schedule_delivery

    backend = get_backend()
    if new.category:
        recipients = inbox_recipients(recipients, new.category)
    sent = backend.send(new, recipients)
    if new.thread is not None:
        # Those who muted the thread got nothing: listeners must not hear of them.
        recipients = backend.unmuted(recipients, new.thread)
    schedule_delivery(backend, new, sent.id)
    backend.on_commit(
        lambda: signals.message_sent.send(sender=type(backend), message=sent, recipients=recipients)
    )
    return sent


def store_for_user(user: Any, level: int, message: Any, **options: Any) -> StoredMessage | None:
    """
    Store one message for one user and return their entry.

    The request path and ``add_message`` go through here: one content row,
    one entry, and the entry comes back for display without another query.
    Return None if the user turned the message's category inbox off.
    """
    from .categories import enabled_users
    from .tasks import schedule_delivery

    new = build_message(level, message, **options)
    uid = user_id(user, "user")
    if new.category and uid not in enabled_users([uid], new.category, "inbox"):
        return None
    backend = get_backend()
    stored = backend.add(new, uid)
    if stored is None:  # the user muted the message's thread
        return None
    schedule_delivery(backend, new, stored.message_id)
    # Listeners get the content record, as from send(), not this user's entry.
    record = getattr(stored, "record", None) or SentMessage(id=stored.message_id, recipient_count=1)
    record.recipient_count = 1
    backend.on_commit(
        lambda: signals.message_sent.send(
            sender=type(backend), message=record, recipients=Recipients(ids=[uid])
        )
    )
    return stored


# Reading ----------------------------------------------------------------------
def get(user: Any, entry_id: Any, *, strict: bool = True) -> StoredMessage | None:
    """
    Return one of the user's entries.

    An id that is not the user's raises ``MessageNotFound``; with
    ``strict=False`` it returns None, for a caller that expects an entry to
    be gone (``DELETE_READ`` deletes what it marks read).
    """
    backend, uid = _owner(user)
    try:
        return backend.get(uid, entry_id)
    except MessageNotFound:
        if strict:
            raise
        return None


def thread_messages(user: Any, entry_id: Any) -> list[StoredMessage]:
    """Return the messages of the entry's thread that the user received, oldest first."""
    backend, uid = _owner(user)
    return backend.thread_messages(uid, entry_id)


def inbox(user: Any, **query: Any) -> list[StoredMessage]:
    """Return the user's entries that ``query`` selects, as ``list()`` does; [] if anonymous."""
    if is_anonymous(user):
        return []
    return get_backend().list(user_id(user), **query)


def claim_unread(user: Any, *, limit: int) -> list[StoredMessage]:
    """
    Return the user's newest unread entries, marked read as they are read.

    For the messages loop: the claim is announced with the rest of what the
    page showed (``apply_read(claimed=...)``), or given back unannounced
    (``release_claimed()``).
    """
    backend, uid = _owner(user)
    return backend.claim_unread(uid, limit=limit)


def unread_count(user: Any) -> int:
    """Return the user's unread count; 0 for anonymous users, so templates need no check."""
    if is_anonymous(user):
        return 0
    return get_backend().count(user_id(user))


def unseen_count(user: Any) -> int:
    """Return how many unread messages the user has not seen yet; 0 for anonymous users."""
    if is_anonymous(user):
        return 0
    return get_backend().unseen_count(user_id(user))


def inbox_counts(user: Any) -> dict[str, int]:
    """
    Return how many messages each tab of an inbox shows: ``unread``, ``all``,
    ``archived`` and ``saved``.

    One query (or one Redis script) that looks at all of the user's entries: for
    an inbox page, not for every request; a badge wants ``unread_count()``.
    """
    if is_anonymous(user):
        return {"unread": 0, "all": 0, "archived": 0, "saved": 0}
    return get_backend().counts(user_id(user))


def inbox_state(user: Any) -> InboxState:
    """
    Return the user's inbox in brief: the unread count, the highest unread
    level, and a version and time for conditional requests.

    A fixed, small number of queries, whatever the inbox holds: what a badge or
    a poll asks. An anonymous user's inbox is empty, with no version.
    """
    if is_anonymous(user):
        return InboxState(unread=0, unseen=0)
    return get_backend().state(user_id(user))


def muted_threads(user: Any) -> list[str]:
    """Return the keys of the threads the user muted, sorted; [] for anonymous users."""
    if is_anonymous(user):
        return []
    return get_backend().muted_threads(user_id(user))


def export_user(user: Any) -> dict[str, Any]:
    """
    Return everything stored for ``user`` as one JSON-serialisable document.

    Every entry (a thread's history and expired entries not yet purged
    included) with its message and states, the user's preferences and muted
    threads: what a personal-data request asks for.
    """
    from .export import export_document

    return export_document(get_backend(), user)


# Changing ---------------------------------------------------------------------
def change(
    user: Any, ids: Sequence[Any], action: str, signal: Signal, *, strict: bool, **options: Any
) -> list[Any]:
    """Apply one of the store's state changes to the user's entries, announce it, return the ids."""
    backend, uid = _owner(user)
    changed: list[Any] = getattr(backend, action)(uid, ids, strict=strict, **options)
    _announce(backend, signal, user, changed)
    return changed


def apply_read(
    user: Any, ids: Sequence[Any], *, strict: bool = True, claimed: Sequence[Any] = ()
) -> list[Any]:
    """
    Mark entries read, or delete them when ``DELETE_READ`` keeps no history.

    Shared by ``mark_read`` and the storage, so both honour the setting.
    ``claimed`` are ids the storage has already marked read with
    ``claim_unread()``: they are announced (and deleted) with the rest.
    """
    backend, uid = _owner(user)
    changed = [*claimed, *backend.mark_read(uid, ids, strict=strict)]
    _after_read(backend, user, uid, changed)
    return changed


def mark_all_read(user: Any, *, before: Any = None) -> list[Any]:
    """Mark the user's unread entries read up to a checked ``before``; return their ids."""
    backend, uid = _owner(user)
    changed = backend.mark_all_read(uid, before=before)
    _after_read(backend, user, uid, changed)
    return changed


def _after_read(backend: BaseBackend, user: Any, uid: Any, changed: list[Any]) -> None:
    _announce(backend, signals.message_read, user, changed)
    if pigeonhole_settings.DELETE_READ and changed:
        try:
            gone = backend.delete(uid, changed, allow_unread=True)
        except MessageNotFound as exc:
            # A concurrent request removed some first; delete the rest.
            remaining = [pk for pk in changed if pk not in set(exc.ids)]
            gone = backend.delete(uid, remaining, allow_unread=True) if remaining else []
        _announce(backend, signals.message_deleted, user, gone)


def mark_seen(user: Any, *, before: Any = None) -> list[Any]:
    """Mark the user's unseen entries seen up to a checked ``before``; return their ids."""
    backend, uid = _owner(user)
    changed = backend.mark_seen(uid, before=before)
    _announce(backend, signals.message_seen, user, changed)
    return changed


def release_claimed(user: Any, ids: Sequence[Any]) -> None:
    """
    Make unread again entries a page claimed but did not show.

    Unannounced: nobody was told they were read, so nobody is told they are
    unread again.
    """
    backend, uid = _owner(user)
    backend.mark_unread(uid, ids, strict=False)


def change_thread(user: Any, thread: str, action: str, signal: Signal) -> bool:
    """Mute or unmute (``action``) the thread keyed ``thread``; return whether it changed."""
    backend, uid = _owner(user)
    changed: bool = getattr(backend, action)(uid, thread)
    if changed:
        backend.on_commit(lambda: signal.send(sender=type(backend), user=user, thread=thread))
    return changed
