"""
A third store, in process memory, written against the hooks alone.

It implements the private hooks of ``BaseBackend`` and the housekeeping
methods, and nothing else: no version bump, no refusal, no error text, no
transaction handling. It does not join the database transaction, so inside
one the base class reserves its ids and holds its writes until the commit.
The contract suite run against it shows that the base class does that work.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import threading
from datetime import datetime
from typing import Any

from django.utils import timezone

from pigeonhole.backends.base import (
    BaseBackend,
    Change,
    InboxQuery,
    InboxState,
    Outcome,
    Purge,
    Recipients,
    SentMessage,
)
from pigeonhole.message import NewMessage, StoredMessage

_STATES = {
    "unread": lambda e: e.read_at is None and e.archived_at is None,
    "read": lambda e: e.read_at is not None and e.archived_at is None,
    "all": lambda e: e.archived_at is None,
    "archived": lambda e: e.archived_at is not None,
    "saved": lambda e: e.saved_at is not None,
}


class MemoryBackend(BaseBackend):
    """Entries as ``StoredMessage`` objects in a dict; one lock makes each call atomic."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.entries: dict[int, StoredMessage] = {}
        self.contents: dict[int, NewMessage] = {}
        self.entry_ids = itertools.count(1)
        self.content_ids = itertools.count(1)
        self.lock = threading.RLock()
        self.folded: set[int] = set()
        self.mutes: dict[Any, set[str]] = {}

    def _visible(self, entry: StoredMessage, now: datetime | None = None) -> bool:
        if entry.id in self.folded:
            return False
        return entry.expires is None or entry.expires > (now or timezone.now())

    def _mine(self, user_id: Any) -> list[StoredMessage]:
        return [e for e in self.entries.values() if e.user_id == user_id and self._visible(e)]

    def _row(self, user_id: Any, thread: str) -> StoredMessage | None:
        for entry in self.entries.values():
            if entry.user_id == user_id and entry.thread == thread and entry.id not in self.folded:
                return entry
        return None

    # Hooks -----------------------------------------------------------------
    def _reserve(self, message: NewMessage, user_ids: list[Any]):
        """Take the ids now; return the content id, the entries and what stores them."""
        created = message.created or timezone.now()
        with self.lock:
            mid = next(self.content_ids)
            entries = [
                StoredMessage.from_new(
                    message,
                    id=next(self.entry_ids),
                    message_id=mid,
                    user_id=uid,
                    created=created,
                    expires=message.expires,
                )
                for uid in user_ids
                if message.thread is None or message.thread not in self.mutes.get(uid, ())
            ]

        def write() -> None:
            with self.lock:
                self.contents[mid] = message
                for entry in entries:
                    old = message.thread and self._row(entry.user_id, message.thread)
                    if old:
                        self.folded.add(old.id)
                        entry.count = 1 if old.read_at else old.count + 1
                        entry.saved_at = old.saved_at
                        entry.senders = list(dict.fromkeys(entry.senders + old.senders))[:3]
                    self.entries[entry.id] = copy.copy(entry)

        return mid, entries, write

    def _reserve_send(self, message: NewMessage, recipients: Recipients):
        ids = list(dict.fromkeys(pk for chunk in recipients.iter_ids() for pk in chunk))
        mid, entries, write = self._reserve(message, ids)
        return SentMessage(id=mid, recipient_count=len(entries)), write

    def _reserve_add(self, message: NewMessage, user_id: Any):
        _, entries, write = self._reserve(message, [user_id])
        return entries[0], write

    def _send(self, message: NewMessage, recipients: Recipients) -> SentMessage:
        sent, write = self._reserve_send(message, recipients)
        write()
        return sent

    def _add(self, message: NewMessage, user_id: Any) -> StoredMessage:
        entry, write = self._reserve_add(message, user_id)
        write()
        return entry

    def _list(self, user_id: Any, query: InboxQuery) -> list[StoredMessage]:
        found = []
        for entry in sorted(self._mine(user_id), key=lambda e: e.id, reverse=True):
            if (
                _STATES[query.state](entry)
                and (not query.levels or entry.level in query.levels)
                and (not query.tag or query.tag in entry.extra_tags.split())
                and (query.since is None or entry.created >= query.since)
                and (query.before is None or entry.created < query.before)
                and (query.after is None or entry.id < query.after)
                and (query.reason is None or entry.reason == query.reason)
            ):
                found.append(copy.copy(entry))
        return found[: query.limit]

    def _get(self, user_id: Any, entry_id: Any) -> StoredMessage | None:
        entry = self.entries.get(entry_id)
        if entry is None or entry.user_id != user_id or not self._visible(entry):
            return None
        return copy.copy(entry)

    def _count(self, user_id: Any) -> int:
        return self._counts(user_id)["unread"]

    def _counts(self, user_id: Any) -> dict[str, int]:
        mine = self._mine(user_id)
        return {
            name: sum(map(_STATES[name], mine)) for name in ("unread", "all", "archived", "saved")
        }

    def _unseen_count(self, user_id: Any) -> int:
        return sum(1 for e in self._mine(user_id) if _STATES["unread"](e) and e.seen_at is None)

    def _history(self, user_id: Any, thread: str) -> list[StoredMessage]:
        return sorted(
            (e for e in self.entries.values() if e.user_id == user_id and e.thread == thread),
            key=lambda e: e.id,
        )

    def _thread_messages(self, user_id: Any, entry: StoredMessage) -> list[StoredMessage]:
        return [copy.copy(e) for e in self._history(user_id, entry.thread)]

    def _export_entries(self, user_id: Any) -> list[StoredMessage]:
        return [copy.copy(e) for pk, e in sorted(self.entries.items()) if e.user_id == user_id]

    def muted_threads(self, user_id: Any) -> list[str]:
        return sorted(self.mutes.get(user_id, ()))

    def _mute(self, user_id: Any, thread: str, muted: bool) -> bool:
        with self.lock:
            threads = self.mutes.setdefault(user_id, set())
            if (thread in threads) == muted:
                return False
            (threads.add if muted else threads.discard)(thread)
        return True

    def state(self, user_id: Any) -> InboxState:
        mine = sorted(self._mine(user_id), key=lambda e: e.id)
        unread = [e for e in mine if _STATES["unread"](e)]
        key = repr([(e.id, e.read_at, e.archived_at, e.seen_at, e.saved_at) for e in mine])
        stamps = [s for e in mine for s in (e.created, e.read_at, e.archived_at) if s]
        return InboxState(
            unread=len(unread),
            max_level=max((e.level for e in unread), default=None),
            version=hashlib.sha256(key.encode()).hexdigest(),
            modified=max(stamps, default=None),
            unseen=self._unseen_count(user_id),
        )

    def _change(self, user_id: Any, change: Change) -> Outcome:
        with self.lock:
            mine = {e.id: e for e in self._mine(user_id) if e.id in set(change.ids)}
            missing = [pk for pk in change.ids if pk not in mine]
            if change.strict and missing:
                return Outcome([], missing=missing)
            saved = []
            if change.action == "delete":
                unread = [pk for pk, e in mine.items() if e.read_at is None]
                if unread and not change.allow_unread:
                    return Outcome([], unread=unread)
                saved = [pk for pk, e in mine.items() if e.saved_at is not None]
                if saved and change.strict:
                    return Outcome([], saved=saved)
                for pk in saved:
                    del mine[pk]
            changed = []
            for pk, entry in mine.items():
                field, value = {
                    "read": ("read_at", entry.read_at or change.now),
                    "unread": ("read_at", None),
                    "archive": ("archived_at", entry.archived_at or change.now),
                    "unarchive": ("archived_at", None),
                    "expire": ("expires", change.expires),
                    "save": ("saved_at", entry.saved_at or change.now),
                    "unsave": ("saved_at", None),
                    "delete": (None, None),
                }[change.action]
                if field and getattr(entry, field) == value and change.action != "expire":
                    continue
                changed.append(pk)
                if change.dry_run:
                    continue
                if field is None:
                    for old in self._history(user_id, entry.thread) if entry.thread else [entry]:
                        del self.entries[old.id]
                        self.folded.discard(old.id)
                else:
                    setattr(entry, field, value)
        return Outcome(sorted(changed, reverse=True), saved=saved)

    def _watermarked(self, user_id: Any, before: Any) -> list[StoredMessage]:
        found = []
        for entry in self._mine(user_id):
            if not _STATES["unread"](entry):
                continue
            if isinstance(before, datetime) and entry.created > before:
                continue
            if before is not None and not isinstance(before, datetime) and entry.id > before:
                continue
            found.append(entry)
        return found

    def _mark_all_read(self, user_id: Any, before: Any, now: datetime, *, dry_run=False):
        with self.lock:
            changed = []
            for entry in self._watermarked(user_id, before):
                if not dry_run:
                    entry.read_at = now
                changed.append(entry.id)
        return sorted(changed, reverse=True)

    def _mark_seen(self, user_id: Any, before: Any, now: datetime) -> list[Any]:
        with self.lock:
            changed = []
            for entry in self._watermarked(user_id, before):
                if entry.seen_at is None:
                    entry.seen_at = now
                    changed.append(entry.id)
        return sorted(changed, reverse=True)

    # Housekeeping and email ------------------------------------------------
    def _doomed(self, expired: bool, read_before: datetime | None) -> tuple[set, set]:
        now = timezone.now()
        rows = {pk: e for pk, e in self.entries.items() if pk not in self.folded}
        gone = {
            pk
            for pk, e in rows.items()
            if expired and e.saved_at is None and e.expires is not None and e.expires <= now
        }
        read = set()
        if read_before is not None:
            read = {
                pk
                for pk, e in rows.items()
                if e.read_at is not None
                and e.read_at < read_before
                and e.saved_at is None
                and pk not in gone
            }
        return gone, read

    def _history_of(self, ids: set) -> set:
        """Return the folded entries of the threads whose rows are ``ids``."""
        rows = [self.entries[pk] for pk in ids if self.entries[pk].thread]
        return {
            old.id for row in rows for old in self._history(row.user_id, row.thread)
        } & self.folded

    def _purge(self, purge: Purge) -> dict[str, int]:
        with self.lock:
            gone, read = self._doomed(purge.expired, purge.read_before)
            doomed = gone | read | self._history_of(gone | read)
            kept = {e.message_id for pk, e in self.entries.items() if pk not in doomed}
            orphans = set(self.contents) - kept
            if not purge.dry_run:
                for pk in doomed:
                    del self.entries[pk]
                    self.folded.discard(pk)
                for mid in orphans:
                    del self.contents[mid]
        return {"expired": len(gone), "read": len(read), "messages": len(orphans)}

    def unmailed_for_message(self, message_id, *, after=None, limit=500) -> list[StoredMessage]:
        found = [
            copy.copy(e)
            for pk, e in sorted(self.entries.items())
            if e.message_id == message_id
            and e.emailed_at is None
            and self._visible(e)
            and (after is None or pk > after)
        ]
        return found[:limit]

    def unmailed_due(self, created_before, *, limit=500, after=None) -> list[StoredMessage]:
        found = sorted(
            (
                e
                for e in self.entries.values()
                if _STATES["unread"](e)
                and e.emailed_at is None
                and self._visible(e)
                and e.created <= created_before
                and (after is None or (e.created, e.id) > (after.created, after.id))
            ),
            key=lambda e: (e.created, e.id),
        )
        return [copy.copy(e) for e in found[:limit]]

    def claim_email(self, ids, when) -> list[Any]:
        with self.lock:
            claimed = []
            for pk in ids:
                entry = self.entries.get(pk)
                if entry is not None and entry.emailed_at is None and self._visible(entry):
                    entry.emailed_at = when
                    claimed.append(pk)
        return claimed

    def release_email(self, ids, when) -> list[Any]:
        with self.lock:
            released = []
            for pk in ids:
                entry = self.entries.get(pk)
                if entry is not None and entry.emailed_at == when:
                    entry.emailed_at = None
                    released.append(pk)
        return released

    def forget_user(self, user_id: Any) -> int:
        with self.lock:
            doomed = [pk for pk, e in self.entries.items() if e.user_id == user_id]
            for pk in doomed:
                del self.entries[pk]
        return len(doomed)

    # Live delivery ---------------------------------------------------------
    def replaced(self, entries: Any) -> dict[Any, Any]:
        """The newest folded entry before each new row, in the row's thread."""
        found = {}
        with self.lock:
            for entry in entries:
                older = [
                    e
                    for e in self._history(entry.user_id, entry.thread)
                    if e.id < entry.id and e.id in self.folded
                ]
                if older:
                    found[entry.id] = copy.copy(max(older, key=lambda e: e.id))
        return found

    def deliveries(self, message_id: Any, user_ids: Any) -> list[tuple[Any, int]]:
        """Each named user's visible entry of the message, with their unread count."""
        wanted = {str(uid) for uid in user_ids}
        with self.lock:
            found = [
                e
                for e in self.entries.values()
                if e.message_id == message_id
                and str(e.user_id) in wanted
                and self._visible(e)
                and e.id not in self.folded
            ]
            return [(copy.copy(e), self._count(e.user_id)) for e in found]
