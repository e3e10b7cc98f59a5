"""
The public API: send, read and change messages from anywhere.

Functions that take a ``request`` behave like ``django.contrib.messages``;
the others need no request, so tasks, shells and signal handlers can use them.
Each change is announced by a signal once the transaction commits.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar, overload

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.messages.api import MessageFailure
from django.dispatch import Signal
from django.http import HttpRequest

import pigeonhole

from . import constants, service, signals
from .conf import pigeonhole_settings
from .exceptions import InvalidMessage
from .message import StickyMessage, StoredMessage
from .service import (  # the reads that need no checking
    apply_read,
    export_user,
    inbox_counts,  # noqa: F401  (public: in __all__ through pigeonhole.__all__)
    inbox_state,
    muted_threads,
    unread_count,
    unseen_count,
)
from .validation import (
    build_message,
    check_datetime,
    check_inbox_args,
    check_reason,
    entry_id,
    entry_ids,
    resolve_recipients,
    thread_key,
)

#: What an ``add_message`` returns, and so its level shortcuts.
_Added = TypeVar("_Added")

#: The public functions: those ``pigeonhole.__all__`` names, which ``import
#: pigeonhole`` offers without loading this module until one is used.
__all__ = [name for name in pigeonhole.__all__ if name.islower()]


def add_message(
    request: HttpRequest,
    level: int,
    message: object,
    extra_tags: object = "",
    fail_silently: bool = False,
    **options: object,
) -> StoredMessage | StickyMessage | None:
    """
    Add a message to the request's storage, like ``messages.add_message``.

    Levels in ``STORE_LEVELS`` are stored for the logged-in user (or for
    ``user=``); the keyword options (``subject``, ``url``, ``data``, ...) are
    those of ``send()``. Return the stored message, if one was stored.
    """
    from .storage import PersistentStorageMixin

    storage = getattr(request, "_messages", None)
    if isinstance(storage, PersistentStorageMixin):
        return storage.add(level, message, extra_tags, fail_silently=fail_silently, **options)
    if not isinstance(request, HttpRequest):
        raise TypeError(
            "add_message() argument must be an HttpRequest object, not "
            f"'{request.__class__.__name__}'."
        )
    if fail_silently:
        return None
    if storage is None:
        raise MessageFailure(
            "You cannot add messages without installing "
            "django.contrib.messages.middleware.MessageMiddleware"
        )
    raise MessageFailure(
        f"MESSAGE_STORAGE is {type(storage).__module__}.{type(storage).__name__}, which cannot "
        "store messages; set MESSAGE_STORAGE = 'pigeonhole.storage.PersistentStorage'."
    )


def level_shortcuts(
    add_message: Callable[..., _Added], levels: Sequence[int], doc: str, *, prefix: str = ""
) -> tuple[Callable[..., _Added], ...]:
    """
    Return ``debug``, ``info``, ``success``, ``warning`` and ``error`` over ``add_message``.

    Each calls ``add_message(request, level, message, ...)`` at its entry of
    ``levels``, debug to error, and shows ``add_message``'s signature without
    ``level``, so help() and IDEs list the options. ``doc`` is formatted with
    the shortcut's ``name`` and ``level``; ``prefix`` starts each name, for a
    library that spelled them ``persistant_info``. The older libraries' modules
    build their own from their own ``add_message``.
    """
    parameters = list(inspect.signature(add_message).parameters.values())
    signature = inspect.Signature(parameters[:1] + parameters[2:])

    def shortcut_at(level: int, name: str) -> Callable[..., _Added]:
        def shortcut(
            request: HttpRequest, message: object, *args: object, **kwargs: object
        ) -> _Added:
            return add_message(request, level, message, *args, **kwargs)

        shortcut.__signature__ = signature  # type: ignore[attr-defined]
        shortcut.__name__ = shortcut.__qualname__ = f"{prefix}{name}"
        shortcut.__module__ = add_message.__module__
        shortcut.__doc__ = doc.format(name=name, level=level)
        return shortcut

    names = ("debug", "info", "success", "warning", "error")
    return tuple(shortcut_at(level, name) for level, name in zip(levels, names, strict=True))


debug, info, success, warning, error = level_shortcuts(
    add_message,
    constants.PERSISTENT_LEVELS,
    "Add a persistent {name} message (level {level}) for the request's user.",
)


def send(
    to: object,
    message: object,
    *,
    level: int = constants.INFO,
    subject: str = "",
    from_user: object = None,
    url: str = "",
    data: object = None,
    target: object = None,
    extra_tags: object = "",
    expires: object = None,
    email: bool | None = None,
    close_timeout: int | None = None,
    category: str | None = None,
    thread: object = None,
    reason: str | None = None,
) -> Any:  # the store's content record, whose type each store chooses
    """
    Send a message to users or groups, with no request needed.

    ``to`` is a user, an iterable of users and groups, a QuerySet of users or
    groups, or a Group. The content is written once and every recipient gets
    an entry, all in one transaction. Return the backend's message record
    (its ``id`` and ``recipient_count``).

    With a ``category``, users who turned that category's inbox off get no
    entry. Email goes out after the commit, see ``docs/email.md``.

    ``thread`` (a key of up to 200 characters, a model instance, or True for
    the ``target``) gives each recipient one inbox row for all the thread's
    messages; those who muted the thread get nothing. ``reason`` is a short
    slug saying why they are told (``"mention"``), which the inbox filters on.
    """
    new = build_message(
        level,
        message,
        subject=subject,
        extra_tags=extra_tags,
        url=url,
        data=data,
        from_user=from_user,
        target=target,
        close_timeout=close_timeout,
        email=email,
        expires=expires,
        category=category,
        thread=thread,
        reason=reason,
    )
    return service.send(new, resolve_recipients(to))


def _change(
    user: object, entries: object, action: str, signal: Signal, strict: bool, **options: object
) -> int:
    """Apply one state change of the store's to the user's entries, announce it, count it."""
    return len(service.change(user, entry_ids(entries), action, signal, strict=strict, **options))


def _watermark(before: object) -> datetime | int | None:
    """Return ``before`` checked: a datetime in UTC, an entry id, or None."""
    if isinstance(before, datetime):
        return check_datetime(before, "before")
    return None if before is None else entry_id(before)


def mark_read(user: object, entries: object, *, strict: bool = True) -> int:
    """
    Mark entries read; return how many were unread.

    An id that is not one of the user's messages raises ``MessageNotFound``
    and nothing changes. With ``strict=False`` such ids are skipped and the
    rest change, in as few queries as with ``strict``: for a page that may be
    stale. The other changes (``mark_unread``, ``archive``, ``unarchive``,
    ``delete``) take ``strict`` alike.
    """
    return len(apply_read(user, entry_ids(entries), strict=strict))


def mark_unread(user: object, entries: object, *, strict: bool = True) -> int:
    """Mark entries unread again, for "remind me later"; return how many were read."""
    return _change(user, entries, "mark_unread", signals.message_unread, strict)


def mark_all_read(user: object, *, before: object = None) -> int:
    """
    Mark every unread message read, up to ``before`` if given.

    ``before`` is an entry id or a datetime, both inclusive: pass the newest id
    the user has seen, and anything that arrived since stays unread.
    """
    return len(service.mark_all_read(user, before=_watermark(before)))


def mark_seen(user: object, *, before: object = None) -> int:
    """
    Mark every unseen message seen, up to ``before`` if given; return how many.

    Seen is what a badge with ``PIGEONHOLE["BADGE"] = "unseen"`` counts: the
    user has been shown the messages, which stay unread. ``before`` works as
    in ``mark_all_read()``.
    """
    return len(service.mark_seen(user, before=_watermark(before)))


def save(user: object, entries: object, *, strict: bool = True) -> int:
    """
    Save entries for later; return how many were not saved yet.

    A saved entry is listed by ``inbox(state="saved")`` whatever its read or
    archived state, survives purges and ``RETENTION_DAYS``, and cannot be
    deleted until unsaved.
    """
    return _change(user, entries, "save", signals.message_saved, strict)


def unsave(user: object, entries: object, *, strict: bool = True) -> int:
    """Unsave entries; return how many were saved."""
    return _change(user, entries, "unsave", signals.message_unsaved, strict)


def _thread_of(thread: object) -> str:
    if isinstance(thread, StoredMessage):
        if thread.thread is None:
            raise InvalidMessage(f"Message {thread.id} is in no thread; only threads can be muted.")
        return thread.thread
    key = thread_key(thread)
    if key is None:
        raise InvalidMessage("thread must be a key, a model instance or a message in a thread.")
    return key


def mute(user: object, thread: object) -> bool:
    """
    Stop telling the user about a thread: no entry, no email, no live event.

    ``thread`` is a key, a model instance or one of the user's messages in the
    thread. Return False if the thread was muted already. What the user
    already has stays.
    """
    return service.change_thread(user, _thread_of(thread), "mute", signals.thread_muted)


def unmute(user: object, thread: object) -> bool:
    """Tell the user about a thread again; return False if it was not muted."""
    return service.change_thread(user, _thread_of(thread), "unmute", signals.thread_unmuted)


@overload
def get(user: object, entry: object, *, strict: Literal[True] = ...) -> StoredMessage: ...
@overload
def get(user: object, entry: object, *, strict: bool) -> StoredMessage | None: ...
def get(user: object, entry: object, *, strict: bool = True) -> StoredMessage | None:
    """
    Return one of the user's messages: an entry id or a ``StoredMessage``.

    An id that is not one of the user's messages raises ``MessageNotFound``,
    as for changes; with ``strict=False`` it returns None instead, for a caller
    that expects the entry may be gone (``DELETE_READ`` deletes what is read).
    Anonymous users raise ``PersistenceUnavailable``.
    """
    return service.get(user, entry_id(entry), strict=strict)


def thread_messages(user: object, entry: object) -> list[StoredMessage]:
    """
    Return the messages of the entry's thread that the user received, oldest first.

    The entry is the thread's inbox row; a message outside any thread is
    returned alone. An id that is not the user's raises ``MessageNotFound``.
    """
    return service.thread_messages(user, entry_id(entry))


def archive(user: object, entries: object, *, strict: bool = True) -> int:
    """
    Move entries out of the inbox without losing them; return how many moved.

    Archiving keeps the read state: an archived message leaves the unread
    count but comes back as it was with ``unarchive()``.
    """
    return _change(user, entries, "archive", signals.message_archived, strict)


def unarchive(user: object, entries: object, *, strict: bool = True) -> int:
    """Bring archived entries back to the inbox; return how many came back."""
    return _change(user, entries, "unarchive", signals.message_unarchived, strict)


def delete(user: object, entries: object, *, strict: bool = True) -> int:
    """
    Delete entries from the user's inbox.

    Unread ones raise ``InvalidMessage`` unless ``ALLOW_DELETE_UNREAD``, and
    nothing is deleted, with ``strict`` or without: a message nobody has seen
    should not vanish by accident.
    """
    return _change(
        user,
        entries,
        "delete",
        signals.message_deleted,
        strict,
        allow_unread=pigeonhole_settings.ALLOW_DELETE_UNREAD,
    )


def reply(user: object, entry: object, message: object, **options: Any) -> Any:
    """
    Answer a message: it goes to the original's sender, from ``user``.

    The reply links to the original (``in_reply_to``) and, unless a subject is
    given, takes the original's subject with "Re: " in front.
    """
    original = get(user, entry)
    if original.from_user_id is None:
        raise InvalidMessage(
            f"Message {original.id} has no sender to reply to; only messages sent with "
            "from_user=... can be answered."
        )
    if "from_user" in options or "in_reply_to" in options:
        raise InvalidMessage("reply() sets from_user and in_reply_to itself; leave them out.")
    if not options.get("subject") and original.subject:
        subject = original.subject
        options["subject"] = subject if subject.startswith("Re: ") else f"Re: {subject}"[:255]
    sender = get_user_model()._default_manager.filter(pk=original.from_user_id).first()
    if sender is None:
        raise InvalidMessage(f"The sender of message {original.id} no longer exists.")
    level = options.pop("level", constants.INFO)
    new = build_message(level, message, from_user=user, in_reply_to=original.message_id, **options)
    return service.send(new, resolve_recipients(sender))


def badge_count(user: object) -> int:
    """Return what badges show: ``unread_count()``, or ``unseen_count()`` if ``BADGE`` says so."""
    if pigeonhole_settings.BADGE == "unseen":
        return unseen_count(user)
    return unread_count(user)


def inbox(
    user: object,
    *,
    state: str = "unread",
    level: int | None = None,
    tag: str | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
    limit: int = 50,
    after: object = None,
    reason: str | None = None,
) -> list[StoredMessage]:
    """
    Return the user's messages, newest first.

    ``level`` matches its persistent and sticky variants too (``INFO`` finds
    ``PERSISTENT_INFO``). For the next page pass ``after=`` the last id of
    this one: keyset paging, as fast on page 500 as on page 1. ``reason``
    keeps the rows whose newest message was sent with it.
    """
    since, before = check_inbox_args(state, limit, after, level, tag, since, before)
    if reason is not None:
        reason = check_reason(reason) or None
    return service.inbox(
        user,
        state=state,
        levels=constants.level_variants(level) if level is not None else None,
        tag=tag,
        since=since,
        before=before,
        limit=limit,
        after=None if after is None else entry_id(after),
        reason=reason,
    )


# Async twins: the same functions, run in the thread that owns the connection.
asend = sync_to_async(send)
areply = sync_to_async(reply)
aunread_count = sync_to_async(unread_count)
ainbox = sync_to_async(inbox)
amark_read = sync_to_async(mark_read)
amark_unread = sync_to_async(mark_unread)
amark_all_read = sync_to_async(mark_all_read)
aarchive = sync_to_async(archive)
aunarchive = sync_to_async(unarchive)
adelete = sync_to_async(delete)
amark_seen = sync_to_async(mark_seen)
aunseen_count = sync_to_async(unseen_count)
abadge_count = sync_to_async(badge_count)
asave = sync_to_async(save)
aunsave = sync_to_async(unsave)
amute = sync_to_async(mute)
aunmute = sync_to_async(unmute)
amuted_threads = sync_to_async(muted_threads)
athread_messages = sync_to_async(thread_messages)
aexport_user = sync_to_async(export_user)
aget = sync_to_async(get)
ainbox_state = sync_to_async(inbox_state)
