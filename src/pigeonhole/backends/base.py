"""
The contract every message store keeps, and the work every store shares.

``api`` validates input and resolves recipients, then calls the public methods
of ``BaseBackend``. Those do what every store owes its callers (renewing inbox
versions, refusing foreign ids and unread deletions with the same errors)
around small private hooks (``_send()``, ``_add()``, ``_list()``,
``_change()``...), the way ``django.contrib.messages``' ``BaseStorage`` does
``add()`` and ``update()`` around ``_get()`` and ``_store()``. A store only
stores and fetches. Every method takes a user *id*, never a user object, so a
store never loads users and can live outside the database (Redis).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import islice
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from .. import versions
from ..conf import pigeonhole_settings
from ..exceptions import InvalidMessage, MessageNotFound
from ..message import NewMessage, StoredMessage, UserId

__all__ = [
    "BaseBackend",
    "Change",
    "InboxQuery",
    "InboxState",
    "Outcome",
    "Purge",
    "Recipients",
    "SentMessage",
]

STATES = ("unread", "read", "all", "archived", "saved")

#: The state changes ``_change()`` applies, and those that can give a user
#: unread messages again (so inbox versions must be renewed after them).
ACTIONS = ("read", "unread", "archive", "unarchive", "delete", "expire", "save", "unsave")
MAKES_UNREAD = frozenset({"unread", "unarchive"})


#: Entry ids, as the state changes take and return them. ``BaseBackend.list``
#: shadows the builtin in the class body, so its methods say ``Ids`` instead.
Ids = list[int]

#: A watermark of ``mark_all_read()`` and ``mark_seen()``: an entry id or a time, inclusive.
Watermark = int | datetime | None


def distinct_users(users: QuerySet[Model]) -> QuerySet[Model]:
    """
    Return ``users`` with each user once, in no particular order.

    A query that joins (groups) may repeat a user. It becomes ``WHERE pk IN
    (query)``, a semi-join: one row per person, read in table order and
    streamed, where ``DISTINCT`` reads and sorts every member before the first
    one comes out (several times slower on PostgreSQL and SQLite). A query
    without joins cannot repeat a primary key and stays as it is.
    """
    users = users.order_by()
    if len(users.query.alias_map) > 1:
        return users.model._base_manager.using(users.db).filter(pk__in=users.values("pk"))
    return users


@dataclass(frozen=True)
class Recipients:
    """
    Who receives a message: a query the database can run itself, or plain ids.

    ``queryset`` is a QuerySet of users (it may repeat a user, through groups),
    so a database backend can copy recipients with one ``INSERT ... SELECT``
    instead of pulling every id into Python. ``ids`` holds distinct user ids
    otherwise.
    """

    queryset: QuerySet[Model] | None = None
    ids: Sequence[UserId] = ()

    def distinct(self) -> Recipients:
        """
        Return these recipients with each user once, as a fan-out needs them.

        A query goes through ``distinct_users()``; a slice cannot be reordered
        or made distinct, so its ids are read.
        """
        users = self.queryset
        if users is None:
            return self
        if users.query.is_sliced:
            return Recipients(ids=list(dict.fromkeys(users.values_list("pk", flat=True))))
        return Recipients(queryset=distinct_users(users))

    def iter_ids(self, chunk_size: int = 2000) -> Iterable[list[UserId]]:
        """Yield recipient ids in chunks, for backends that cannot join the users table."""
        if self.queryset is None:
            for start in range(0, len(self.ids), chunk_size):
                yield list(self.ids[start : start + chunk_size])
            return
        # islice() takes each chunk off the iterator without a Python step per id.
        pks = self.queryset.values_list("pk", flat=True).iterator(chunk_size=chunk_size)
        while chunk := list(islice(pks, chunk_size)):
            yield chunk


@dataclass
class SentMessage:
    """
    What ``send()`` returns: the shared content's id and how many received it.

    The database backend returns its ``Message`` model instance instead, which
    carries the same two attributes.
    """

    id: int
    recipient_count: int


@dataclass(frozen=True)
class InboxState:
    """
    A user's inbox in brief, read without loading any message.

    ``unread`` and ``max_level`` (the highest level among unread entries, or
    None) are what a badge shows. ``version`` is an opaque string that changes
    whenever anything the user could list changes, so clients can poll with
    ``ETag``/``If-None-Match``; None when the backend cannot tell cheaply.
    ``modified`` is the newest time the inbox records (an arrival, a read, an
    archiving), for ``Last-Modified``. ``unseen`` is the unseen count, for
    badges with ``BADGE = "unseen"``; None from a store that keeps no seen
    state, where every unread entry is unseen.
    """

    unread: int
    max_level: int | None = None
    version: str | None = None
    modified: datetime | None = None
    unseen: int | None = None


@dataclass(frozen=True)
class InboxQuery:
    """
    One listing of a user's inbox, as ``list()`` hands it to ``_list()``.

    ``state`` is one of ``unread``, ``read``, ``all`` (unarchived),
    ``archived`` and ``saved`` (archived or not); ``levels`` the levels to
    keep (None for any); ``tag`` a word of ``extra_tags``; ``since``
    (inclusive) and ``before`` (exclusive) bound the creation time; ``after``
    is the last id of the previous page, for keyset paging: entries come
    newest first. ``reason`` keeps the rows whose newest message has it.
    """

    state: str = "unread"
    levels: Sequence[int] | None = None
    tag: str | None = None
    since: datetime | None = None
    before: datetime | None = None
    limit: int = 50
    after: int | None = None
    reason: str | None = None

    @property
    def plain(self) -> bool:
        """Whether only the state and the limit are asked for: every page's listing."""
        return not (
            self.levels or self.tag or self.since or self.before or self.after or self.reason
        )


@dataclass(frozen=True)
class Change:
    """
    One state change of some of a user's entries, as the base class hands it to ``_change()``.

    ``action`` is one of ``read``, ``unread``, ``archive``, ``unarchive``,
    ``delete``, ``expire``, ``save`` and ``unsave``. ``now`` stamps reads,
    archivings and savings; deleting a thread's row deletes its history too;
    ``expires`` is the new expiry of an ``expire``. ``strict`` asks for the
    ids that are not the user's visible entries to be reported; without it
    they are skipped. ``allow_unread`` lets a ``delete`` remove unread entries.
    ``dry_run`` asks what the change would do, writing nothing: a store that
    does not join the database transaction gets it inside one (see
    ``BaseBackend.joins_transaction``).
    """

    action: str
    ids: Sequence[int]
    now: datetime
    strict: bool = True
    allow_unread: bool = False
    expires: datetime | None = None
    dry_run: bool = False


@dataclass(frozen=True)
class Purge:
    """
    What one ``purge()`` removes, as the base class hands it to ``_purge()``.

    Expired entries if ``expired``; read ones older than ``read_before`` if
    given; with ``dry_run`` only counted.
    """

    expired: bool = True
    read_before: datetime | None = None
    dry_run: bool = False


@dataclass
class Outcome:
    """
    What ``_change()`` did, or why it did nothing.

    ``changed`` holds the ids whose state changed, newest first. A store that
    fills ``missing`` (ids that are not the user's visible entries, under
    ``strict``), ``unread`` (unread entries a ``delete`` without
    ``allow_unread`` was asked to remove) or ``saved`` (saved entries a
    ``delete`` was asked to remove) must have written nothing: the base class
    then raises ``MessageNotFound`` or ``InvalidMessage``.
    """

    changed: list[int]
    missing: Collection[int] = ()
    unread: Sequence[int] = ()
    saved: Sequence[int] = ()


class BaseBackend:
    """
    Store messages and per-user inbox state.

    The public methods are the contract and do the work every store shares;
    subclasses implement the private hooks they call: ``_send()``, ``_add()``,
    ``_list()``, ``_get()``, ``_count()``, ``_counts()``, ``_change()``,
    ``_mark_all_read()``, ``_thread_messages()``, ``_mark_seen()``,
    ``_unseen_count()`` and ``_mute()``, then the housekeeping and email
    methods, which have no shared work to wrap. ``_claim_unread()`` has a
    fallback built on ``_list()`` and ``_change()``; a store overrides it to
    save a round trip.

    A send with a ``thread`` key must fold the recipients' rows of that
    thread into the new entry (see ``InboxEntry``) and skip the recipients
    who muted it, in the same statement or script as the insert.

    Methods that change state return the ids they changed, so ``api`` can
    tell listeners exactly what happened.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options

    def on_commit(self, func: Callable[[], object]) -> None:
        """
        Run ``func`` once the change it reports is durable.

        Signals and live events go out through here, so a listener never hears
        of a message that a rollback then removes. Stores outside the database
        still wait for the database transaction the call was made in.
        """
        transaction.on_commit(func)

    #: True when every method that can give a user unread messages (``send``,
    #: ``add``, ``mark_unread``, ``unarchive``) calls :meth:`changed`, as the
    #: public methods here do. Only then may the storage trust
    #: ``PIGEONHOLE["CACHE"]`` to say an inbox is still empty; a store that
    #: overrides those methods and leaves it False is always asked.
    tracks_versions = True

    #: True when the store's writes join the database transaction they are
    #: made in, as the database store's do. A store outside the database leaves
    #: it False: inside ``transaction.atomic()`` the public methods then check
    #: at once what they can refuse, and hold the writes back until the commit
    #: (through :meth:`on_commit`), so a rollback leaves nothing behind. Such a
    #: store implements ``_reserve_send()`` and ``_reserve_add()``, and the
    #: ``dry_run`` of ``_change()`` and ``_mark_all_read()``.
    joins_transaction = False

    def in_transaction(self) -> bool:
        """
        Return whether a change made now is still invisible to other connections.

        That is, whether the call runs inside ``transaction.atomic()`` on the
        default database, whose commit :meth:`on_commit` waits for. The atomic
        block Django's ``TestCase`` wraps each test in does not count, as it
        does not for Django's own ``durable`` check: it stands for autocommit.
        """
        blocks = connections[DEFAULT_DB_ALIAS].atomic_blocks
        return any(not getattr(block, "_from_testcase", False) for block in blocks)

    def holds_writes(self) -> bool:
        """Return whether writes made now wait for a commit: outside the database, in one."""
        return not self.joins_transaction and self.in_transaction()

    def changed(self, user_ids: Iterable[UserId] = (), *, everyone: bool = False) -> None:
        """
        Renew the inbox versions of users who may have new unread messages.

        Call it once the change is written. The versions are renewed at once,
        so this connection's own next read sees the change, and again after the
        commit when the change is still inside a transaction: a page that read
        the old versions and found nothing before the commit must not trust
        them afterwards. A rolled-back change only costs a query.
        """
        if pigeonhole_settings.CACHE is None:
            return
        ids = list(user_ids)
        if not ids and not everyone:
            return
        versions.bump(ids, everyone=everyone)
        if self.in_transaction():
            self.on_commit(lambda: versions.bump(ids, everyone=everyone))

    def changed_for(self, recipients: Recipients) -> None:
        """Renew versions after a send: per user for a few ids, the shared token otherwise."""
        if recipients.queryset is None and len(recipients.ids) <= versions.PER_USER_LIMIT:
            self.changed(recipients.ids)
        else:
            self.changed(everyone=True)

    # Writing ----------------------------------------------------------------
    def send(self, message: NewMessage, recipients: Recipients) -> Any:
        """
        Store ``message`` once and give every recipient an unread entry, atomically.

        Return the content's record: its ``id`` and ``recipient_count``. When
        the store holds writes back (see :attr:`joins_transaction`), the ids
        are reserved now and the message is written on commit.
        """
        if self.holds_writes():
            sent, write = self._reserve_send(message, recipients)
            self.on_commit(write)
        else:
            sent = self._send(message, recipients)
        self.changed_for(recipients)
        return sent

    def add(self, message: NewMessage, user_id: UserId) -> StoredMessage | None:
        """
        Store ``message`` for one user and return their entry.

        The request path uses this: one message, one recipient, and the caller
        needs the entry back to show it without reading it again. Return None,
        storing nothing, if the user muted the message's thread.
        """
        if message.thread is not None and message.thread in self.muted_threads(user_id):
            return None
        if self.holds_writes():
            stored, write = self._reserve_add(message, user_id)
            self.on_commit(write)
        else:
            stored = self._add(message, user_id)
        if getattr(stored, "noted", True):
            self.changed([user_id])
        return stored

    def _send(self, message: NewMessage, recipients: Recipients) -> Any:
        raise NotImplementedError("subclasses of BaseBackend must provide a _send() method")

    def _add(self, message: NewMessage, user_id: UserId) -> StoredMessage:
        """
        Store ``message`` for one user and return their entry.

        A store that can tell, in the same round trip, that no unread listing
        of the user came back empty since their last add may set ``noted =
        False`` on the entry: no page can hold a note of an empty inbox then
        (see ``PIGEONHOLE["CACHE"]``), so :meth:`add` renews no version, and
        the request path saves a cache write.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide an _add() method")

    def _reserve_send(
        self, message: NewMessage, recipients: Recipients
    ) -> tuple[Any, Callable[[], object]]:
        """
        Reserve the ids of a send and return its record and the function that writes it.

        Nothing is visible until that function runs, on commit.
        """
        raise NotImplementedError(
            "subclasses of BaseBackend that do not join the database transaction "
            "must provide a _reserve_send() method"
        )

    def _reserve_add(
        self, message: NewMessage, user_id: UserId
    ) -> tuple[StoredMessage, Callable[[], object]]:
        """Reserve the ids of an add; return the entry and the function that writes it."""
        raise NotImplementedError(
            "subclasses of BaseBackend that do not join the database transaction "
            "must provide a _reserve_add() method"
        )

    # Reading ----------------------------------------------------------------
    def list(
        self, user_id: UserId, query: InboxQuery | None = None, **filters: Any
    ) -> list[StoredMessage]:
        """
        Return the user's entries, newest first, keyset-paged by ``after``.

        Pass an ``InboxQuery``, or its fields as keywords (``state="all"``,
        ``limit=10``): one value names the filters, for every store.
        """
        return self._list(user_id, query or InboxQuery(**filters))

    def claim_unread(self, user_id: UserId, *, limit: int = 50) -> builtins.list[StoredMessage]:
        """
        Return the user's newest unread entries, as ``list()`` does, and mark them read.

        The request storage calls this when a page displays its messages and
        ``READ_ON_DISPLAY`` is on, so a store that reads and stamps in one
        statement saves a round trip on every such page. The entries come back
        as ``list()`` would return them, unread, for the page to show as they
        were. Those another caller claimed first are left out: two pages
        opened at once show a message once.
        """
        return self._claim_unread(user_id, limit, timezone.now())

    def _claim_unread(
        self, user_id: UserId, limit: int, now: datetime
    ) -> builtins.list[StoredMessage]:
        """List, then mark read leniently: two steps, for stores without one to do both."""
        listed = self._list(user_id, InboxQuery("unread", limit=limit))
        if not listed:
            return []
        change = Change("read", [entry.id for entry in listed], now, strict=False)
        claimed = set(self._change(user_id, change).changed)
        return [entry for entry in listed if entry.id in claimed]

    def get(self, user_id: UserId, entry_id: int) -> StoredMessage:
        """Return one entry of this user's, or raise ``MessageNotFound``."""
        entry = self._get(user_id, entry_id)
        if entry is None:
            raise MessageNotFound(entry_id)
        return entry

    def count(self, user_id: UserId) -> int:
        """Return how many unread, unarchived, unexpired entries the user has."""
        return self._count(user_id)

    def counts(self, user_id: UserId) -> dict[str, int]:
        """
        Return how many visible entries the user has in each tab of an inbox page.

        Keys ``unread``, ``all`` (unarchived, read or not), ``archived`` and
        ``saved``. Counting every entry is for pages a user opens, not for every request:
        badges use ``count()`` or ``state()``.
        """
        return self._counts(user_id)

    def state(self, user_id: UserId) -> InboxState:
        """
        Return the user's ``InboxState`` in a fixed, small number of queries.

        Stores should override this: the fallback here reads up to 1000
        unread entries to find the highest level and reports no ``version``,
        which turns off conditional responses rather than risk a stale one.
        """
        unread = self.list(user_id, state="unread", limit=1000)
        return InboxState(
            unread=self.count(user_id),
            max_level=max((entry.level for entry in unread), default=None),
            unseen=self.unseen_count(user_id),
        )

    def snapshots(
        self, user_ids: Sequence[UserId], limit: int
    ) -> builtins.list[tuple[builtins.list[StoredMessage], int]]:
        """
        Return, for each of ``user_ids``, its newest ``limit`` entries and its unread count.

        The entries are ``list(user_id, state="all", limit=limit)``'s and the
        count ``count(user_id)``'s: what a reconnecting live stream reads. In
        a reconnect storm a process reads them for dozens of streams at once,
        so a store that can read several users in one round trip should
        override this; here each user is read in turn.
        """
        return [
            (self.list(user_id, state="all", limit=limit), self.count(user_id))
            for user_id in user_ids
        ]

    def thread_messages(self, user_id: UserId, entry_id: int) -> builtins.list[StoredMessage]:
        """
        Return the messages of the entry's thread this user received, oldest first.

        The entry is the thread's row, so the last one is the entry itself;
        an entry outside any thread is its own thread. Raise
        ``MessageNotFound`` if the entry is not one of the user's visible ones.
        """
        entry = self.get(user_id, entry_id)
        if entry.thread is None:
            return [entry]
        return self._thread_messages(user_id, entry)

    def unseen_count(self, user_id: UserId) -> int:
        """Return how many unread, unarchived, visible entries the user has not seen yet."""
        return self._unseen_count(user_id)

    def export_entries(self, user_id: UserId) -> builtins.list[StoredMessage]:
        """
        Return every entry stored for the user, oldest first, for a data export.

        Expired entries not yet purged and a thread's folded history are
        included: the export holds what is stored, not what is shown.
        """
        return self._export_entries(user_id)

    def _list(self, user_id: UserId, query: InboxQuery) -> builtins.list[StoredMessage]:
        raise NotImplementedError("subclasses of BaseBackend must provide a _list() method")

    def _thread_messages(
        self, user_id: UserId, entry: StoredMessage
    ) -> builtins.list[StoredMessage]:
        """Return the user's entries of ``entry.thread``, folded ones included, oldest first."""
        raise NotImplementedError(
            "subclasses of BaseBackend must provide a _thread_messages() method"
        )

    def _unseen_count(self, user_id: UserId) -> int:
        raise NotImplementedError(
            "subclasses of BaseBackend must provide an _unseen_count() method"
        )

    def _export_entries(self, user_id: UserId) -> builtins.list[StoredMessage]:
        raise NotImplementedError(
            "subclasses of BaseBackend must provide an _export_entries() method"
        )

    def _get(self, user_id: UserId, entry_id: int) -> StoredMessage | None:
        """Return the user's visible entry ``entry_id``, or None."""
        raise NotImplementedError("subclasses of BaseBackend must provide a _get() method")

    def _count(self, user_id: UserId) -> int:
        raise NotImplementedError("subclasses of BaseBackend must provide a _count() method")

    def _counts(self, user_id: UserId) -> dict[str, int]:
        raise NotImplementedError("subclasses of BaseBackend must provide a _counts() method")

    # Changing state ---------------------------------------------------------
    def mark_read(self, user_id: UserId, ids: Sequence[int], *, strict: bool = True) -> Ids:
        """
        Mark entries read and return the ids that were unread.

        With ``strict``, an id that is not the user's raises ``MessageNotFound``
        and nothing changes. Without it, such ids are skipped: the request path
        marks only entries it has just read itself, and a bulk action on a
        stale page still changes the rest. The other changes take ``strict`` alike.
        """
        return self._apply("read", user_id, ids, strict=strict)

    def mark_unread(self, user_id: UserId, ids: Sequence[int], *, strict: bool = True) -> Ids:
        """Mark entries unread again and return the ids that were read."""
        return self._apply("unread", user_id, ids, strict=strict)

    def mark_all_read(self, user_id: UserId, *, before: Watermark = None) -> Ids:
        """
        Mark read every unread, unarchived entry up to a watermark; return their ids.

        ``before`` is an entry id (inclusive) or a datetime (inclusive); entries
        that arrive after it stay unread, however the calls interleave.
        """
        now = timezone.now()
        if not self.holds_writes():
            return self._mark_all_read(user_id, before, now)
        # Read now which entries the watermark takes; mark exactly those on commit.
        changed = self._mark_all_read(user_id, before, now, dry_run=True)
        found = list(changed)

        def write() -> None:
            done: Ids = []
            for start in range(0, len(found), 1000):
                chunk = found[start : start + 1000]
                done += self._change(user_id, Change("read", chunk, now, strict=False)).changed
            changed[:] = sorted(done, reverse=True)

        self.on_commit(write)
        return changed

    def mark_seen(self, user_id: UserId, *, before: Watermark = None) -> Ids:
        """
        Mark seen every unseen, unread, unarchived entry up to a watermark; return their ids.

        ``before`` works as in :meth:`mark_all_read`. Seen only takes an entry
        out of the unseen count (a badge): it stays unread.
        """
        return self._mark_seen(user_id, before, timezone.now())

    def save(self, user_id: UserId, ids: Sequence[int], *, strict: bool = True) -> Ids:
        """
        Save entries and return those that were not saved.

        A saved entry stays listed under ``state="saved"`` whatever its read or
        archived state, survives ``purge()`` and cannot be deleted until unsaved.
        """
        return self._apply("save", user_id, ids, strict=strict)

    def unsave(self, user_id: UserId, ids: Sequence[int], *, strict: bool = True) -> Ids:
        """Unsave entries and return those that were saved."""
        return self._apply("unsave", user_id, ids, strict=strict)

    def archive(self, user_id: UserId, ids: Sequence[int], *, strict: bool = True) -> Ids:
        """Move entries out of the inbox, keeping their read state; return those moved."""
        return self._apply("archive", user_id, ids, strict=strict)

    def unarchive(self, user_id: UserId, ids: Sequence[int], *, strict: bool = True) -> Ids:
        """Bring archived entries back to the inbox; return those brought back."""
        return self._apply("unarchive", user_id, ids, strict=strict)

    def delete(
        self,
        user_id: UserId,
        ids: Sequence[int],
        *,
        allow_unread: bool = False,
        strict: bool = True,
    ) -> Ids:
        """
        Delete entries and return their ids.

        Unless ``allow_unread``, an unread entry raises ``InvalidMessage`` and
        nothing is deleted, with ``strict`` or without: it is too easy to lose
        a message nobody has seen.
        """
        return self._apply("delete", user_id, ids, strict=strict, allow_unread=allow_unread)

    def _apply(
        self,
        action: str,
        user_id: UserId,
        ids: Sequence[int],
        *,
        strict: bool = True,
        allow_unread: bool = False,
        expires: datetime | None = None,
    ) -> Ids:
        """Apply one change through ``_change()``: refusals, then versions."""
        ids = list(ids)
        if not ids:
            return []
        now = timezone.now()
        change = Change(
            action,
            ids,
            now,
            strict=strict,
            allow_unread=allow_unread,
            expires=expires or now,
        )
        if self.holds_writes():
            outcome = self._change(user_id, replace(change, dry_run=True))
        else:
            outcome = self._change(user_id, change)
        if strict and outcome.missing:
            raise MessageNotFound(outcome.missing)
        if outcome.unread and not allow_unread:
            unread = sorted(outcome.unread)
            raise InvalidMessage(
                f"Message {', '.join(map(str, unread))} is unread and cannot be deleted. "
                "Mark it read first, or set PIGEONHOLE['ALLOW_DELETE_UNREAD'] = True."
            )
        if outcome.saved and strict:
            saved = sorted(outcome.saved)
            raise InvalidMessage(
                f"Message {', '.join(map(str, saved))} is saved and cannot be deleted. "
                "Unsave it first."
            )
        changed = outcome.changed
        if self.holds_writes():
            # Checked now, written on commit: what changes then (an entry may
            # have changed meanwhile) replaces the ids returned, so the signals
            # sent after the commit report what happened.
            later = replace(change, strict=False)

            def write() -> None:
                changed[:] = self._change(user_id, later).changed

            self.on_commit(write)
        if changed and action in MAKES_UNREAD:
            self.changed([user_id])
        return changed

    def _change(self, user_id: UserId, change: Change) -> Outcome:
        """
        Apply ``change`` to the user's visible entries among ``change.ids``, atomically.

        Report refusals in the ``Outcome`` and write nothing then; see there.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide a _change() method")

    def _mark_all_read(
        self, user_id: UserId, before: Watermark, now: datetime, *, dry_run: bool = False
    ) -> Ids:
        """Mark read the user's unread entries up to the watermark (or only find them)."""
        raise NotImplementedError(
            "subclasses of BaseBackend must provide a _mark_all_read() method"
        )

    def _mark_seen(self, user_id: UserId, before: Watermark, now: datetime) -> Ids:
        raise NotImplementedError("subclasses of BaseBackend must provide a _mark_seen() method")

    # Muting -----------------------------------------------------------------
    def mute(self, user_id: UserId, thread: str) -> bool:
        """Stop giving the user entries in ``thread``; return False if it was muted already."""
        return self._mute(user_id, thread, True)

    def unmute(self, user_id: UserId, thread: str) -> bool:
        """Give the user entries in ``thread`` again; return False if it was not muted."""
        return self._mute(user_id, thread, False)

    def unmuted(self, recipients: Recipients, thread: str) -> Recipients:
        """
        Return ``recipients`` without those who muted ``thread``.

        ``send()`` leaves them out itself; this tells the listeners of the send
        (live streams, signals) who was reached. The default asks per user.
        """
        ids = [pk for chunk in recipients.iter_ids() for pk in chunk]
        return Recipients(ids=[pk for pk in ids if thread not in self.muted_threads(pk)])

    def muted_threads(self, user_id: UserId) -> builtins.list[str]:
        """Return the keys of the threads the user muted, sorted."""
        raise NotImplementedError("subclasses of BaseBackend must provide a muted_threads() method")

    def _mute(self, user_id: UserId, thread: str, muted: bool) -> bool:
        raise NotImplementedError("subclasses of BaseBackend must provide a _mute() method")

    # Housekeeping -----------------------------------------------------------
    def expire(self, user_id: UserId, ids: Sequence[int], when: datetime | None = None) -> Ids:
        """Make entries expire at ``when`` (now by default): invisible from then on."""
        return self._apply("expire", user_id, ids, expires=when)

    def purge(
        self,
        *,
        expired: bool = True,
        read_before: datetime | None = None,
        dry_run: bool = False,
    ) -> dict[str, int]:
        """
        Remove expired entries, and read ones older than ``read_before``.

        Saved entries stay, and so does the folded history of a thread whose
        row stays; a removed row takes its history with it. Return counts by
        kind (``expired``, ``read``, ``messages``) so commands can say what
        they did, or would do with ``dry_run``.
        """
        return self._purge(Purge(expired, read_before, dry_run))

    def _purge(self, purge: Purge) -> dict[str, int]:
        raise NotImplementedError("subclasses of BaseBackend must provide a _purge() method")

    # Email ------------------------------------------------------------------
    def unmailed_for_message(
        self, message_id: int, *, after: int | None = None, limit: int = 500
    ) -> builtins.list[StoredMessage]:
        """
        Return the message's visible entries not yet emailed, in id order.

        Pass ``after=`` the last id of the previous batch for the next one. The
        delivery task reads recipients here, so a retried task only looks at
        those who still have no email.
        """
        raise NotImplementedError(
            "subclasses of BaseBackend must provide an unmailed_for_message() method"
        )

    def unmailed_due(
        self,
        created_before: datetime,
        *,
        limit: int = 500,
        after: StoredMessage | None = None,
    ) -> builtins.list[StoredMessage]:
        """
        Return unread, unarchived, visible entries of every user that are not
        emailed yet and were created at or before ``created_before``, oldest first.

        Pass ``after=`` the last entry of the previous page for the next one:
        a cursor, not an offset, so entries claimed, read or expired between
        pages (or skipped inside one) neither repeat an entry nor hide one.
        Entries created at the same time come in an order of the store's
        choosing (by id on the database, by the id's digits on Redis), the
        same on every page. Digests read here. The result is a snapshot, not
        a claim: two digest runs may both see an entry, and
        :meth:`claim_email` decides which sends it.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide an unmailed_due() method")

    def claim_email(self, ids: Sequence[int], when: datetime) -> Ids:
        """
        Set ``emailed_at = when`` on those entries not emailed yet; return their ids.

        Atomic per entry: of any number of concurrent callers exactly one gets
        each entry back, so a retried task or a second digest run never emails
        the same entry twice. Expired and deleted entries are never claimed.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide a claim_email() method")

    def release_email(self, ids: Sequence[int], when: datetime) -> Ids:
        """
        Undo the claims made at ``when`` on ``ids``; return the ids released.

        Called when an email could not be sent, so that a retry or a digest
        sends it later. A claim made by another caller (another ``when``) stays.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide a release_email() method")

    #: True when deleting a user already deletes their entries (a database
    #: foreign key with ``ON DELETE CASCADE``), so :meth:`forget_user` need not run.
    forgets_with_user = False

    def forget_user(self, user_id: UserId) -> int:
        """
        Delete every entry of a user who has been deleted; return how many.

        A store outside the database would otherwise keep a deleted account's
        messages for ever. Contents left without entries go at the next purge,
        as with any deletion.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide a forget_user() method")

    # Live delivery ----------------------------------------------------------
    def deliveries(
        self, message_id: int, user_ids: Sequence[UserId]
    ) -> builtins.list[tuple[StoredMessage, int]]:
        """
        Return ``(entry, unread count)`` for each of ``user_ids`` with a visible entry
        of message ``message_id``, in as few round trips as the store allows.

        A process serving live streams reads a new message here once for all
        its streams' users, instead of once per stream; users who did not get
        the message are simply absent. A backend without it leaves each stream
        to read the store for itself.
        """
        raise NotImplementedError("subclasses of BaseBackend may provide a deliveries() method")

    def replaced(self, entries: Sequence[StoredMessage]) -> dict[int, StoredMessage]:
        """
        Return ``{entry id: the row it replaced}`` for new thread rows.

        When a thread's new message reaches a user who had a row in it, the
        new entry becomes the row and the old one is folded; a live client
        removes the old row as it shows the new one. ``entries`` are new,
        visible entries (of any users) in threads; one with no older row in
        its thread is absent from the result. The rows are ``StoredMessage``
        objects, read state included: a reconnecting client's cursor still
        covers them. A backend without it leaves each stream to work it out
        from ``thread_messages()``.
        """
        raise NotImplementedError("subclasses of BaseBackend may provide a replaced() method")
