"""
The database backend: ``DatabaseBackend``, on two tables in the project's own database.

Fan-out is one ``INSERT ... SELECT`` per batch, so the database copies recipient
ids itself; no user or entry objects are built in Python, however many people
a message goes to. The statements written by hand are in ``sql``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeAlias, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet
from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, Exists, F, Max, Model, OuterRef, Q, QuerySet
from django.utils import timezone

from ...message import CONTENT_FIELDS, STATE_FIELDS, NewMessage, StoredMessage, UserId
from ...models import FoldedEntry, InboxEntry, InboxEntryQuerySet, Message, Mute, Thread
from ...receivers import history_gone
from ..base import (
    BaseBackend,
    Change,
    InboxQuery,
    InboxState,
    Outcome,
    Purge,
    Recipients,
    Watermark,
    distinct_users,
)
from . import sql

__all__ = ["DatabaseBackend"]

_COLUMNS = sql.COLUMNS
_T = TypeVar("_T")

#: The users a send reaches, as a query the database runs itself.
UserQuerySet: TypeAlias = QuerySet[Model]

#: ``{entry id: (read_at, archived_at, saved_at)}``, what ``_owned()`` returns.
Owned: TypeAlias = dict[int, tuple[datetime | None, ...]]
_NAMES = STATE_FIELDS + CONTENT_FIELDS


def _row_to_stored(row: Sequence[Any]) -> StoredMessage:
    values = dict(zip(_NAMES, row, strict=True))
    values["senders"] = _senders(values["senders"])
    return StoredMessage(**values)


def _rows_of_one_content(rows: Iterable[Sequence[Any]]) -> list[StoredMessage]:
    """
    Return the entries in ``rows`` (of ``_COLUMNS``), which all share one content.

    The same as ``_row_to_stored()`` for each, but the content's fields are
    read from the first row and shared by the others, which get only their
    own fields: a broadcast's read builds thousands of entries of one
    message, and a full build of each cost three times this. The shared
    values (the text, the ``data`` object) are the same for every entry, so
    the entries must be read, not changed.
    """
    entries: list[StoredMessage] = []
    shared: dict[str, Any] | None = None
    own = len(STATE_FIELDS)
    for row in rows:
        if shared is None:
            first = _row_to_stored(row)
            shared = {name: first.__dict__[name] for name in CONTENT_FIELDS}
            entries.append(first)
            continue
        entry = object.__new__(StoredMessage)
        entry.__dict__.update(shared)
        entry.__dict__.update(zip(STATE_FIELDS, row[:own], strict=True))
        entry.senders = _senders(entry.senders)  # type: ignore[arg-type]
        entries.append(entry)
    return entries


def _senders(stored: str) -> list[UserId]:
    """Return the user ids in a ``senders`` column (",id,id,"), the newest three."""
    if not stored:  # an unthreaded message: thousands of such rows in one read
        return []
    pk = get_user_model()._meta.pk
    return [pk.to_python(token) for token in (stored or "").split(",") if token][:3]


_STATE_FILTERS = {
    "unread": {"read_at__isnull": True, "archived_at__isnull": True},
    "read": {"read_at__isnull": False, "archived_at__isnull": True},
    "all": {"archived_at__isnull": True},
    "archived": {"archived_at__isnull": False},
    "saved": {"saved_at__isnull": False},
}


#: What ``_owned()`` reads of each entry a change names.
_OWNED_COLUMNS = ("read_at", "archived_at", "saved_at")

#: Unread entries not seen yet: what the unseen count counts.
_UNSEEN = Q(seen_at__isnull=True, read_at__isnull=True, archived_at__isnull=True)


#: ``{content field: its column's default}`` for the columns that take no NULL.
_NOT_NULL: dict[str, Any] = {
    field.attname: field.get_default()
    for field in Message._meta.concrete_fields
    if field.attname in CONTENT_FIELDS and not field.null
}


def _message_fields() -> list[Any]:
    """Every concrete field of ``Message`` but its primary key, as an insert writes them."""
    return [f for f in Message._meta.concrete_fields if not f.primary_key]


def _chunks(values: Sequence[_T], size: int) -> Iterable[Sequence[_T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class _Refused(Exception):
    """Raised inside a change's transaction to roll it back; carries the ids refused."""

    def __init__(self, ids: Collection[int]) -> None:
        super().__init__(ids)
        self.ids = ids


class DatabaseBackend(BaseBackend):
    """
    Store messages with the Django ORM.

    ``OPTIONS = {"using": "alias"}`` pins a database; by default the project's
    database routers decide, as for any other model.
    """

    #: Rows per statement when ids go as a list of placeholders (``IN (%s, ...)``).
    batch_size = 5000
    #: Recipients per ``INSERT ... SELECT`` when a list of ids goes as one
    #: parameter (``sql.takes_id_array()``). Large: a send into a thread joins
    #: each batch with all of the thread's rows, so 5,000 to a statement read
    #: a thread of 100,000 twenty times.
    array_batch_size = 100_000

    #: Whether the request path runs the SQL of ``sql``, which reads the visible
    #: entries of ``get_queryset()`` as this class defines them. A subclass that
    #: overrides ``get_queryset()`` gets False, so every read and write goes
    #: through its queryset; one whose override keeps to those rows may set it
    #: back to True, and one may set False without overriding anything.
    uses_plain_sql: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__ and "uses_plain_sql" not in cls.__dict__:
            cls.uses_plain_sql = False

    def __init__(self, *, using: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.using = using
        self._statements = sql.Statements()

    # Helpers ----------------------------------------------------------------
    def on_commit(self, func: Callable[[], object]) -> None:
        transaction.on_commit(func, using=self.db_for_write())

    def in_transaction(self) -> bool:
        return connections[self.db_for_write()].in_atomic_block

    def db_for_write(self) -> str:
        return self.using or router.db_for_write(InboxEntry)

    def db_for_read(self) -> str:
        return self.using or router.db_for_read(InboxEntry)

    def get_queryset(self, user_id: UserId, *, write: bool = False) -> InboxEntryQuerySet:
        """Return this user's visible entries; every read and write starts here."""
        alias = self.db_for_write() if write else self.db_for_read()
        return InboxEntry.objects.using(alias).filter(user_id=user_id).visible()

    def _id_batch_size(self, alias: str) -> int:
        limit = connections[alias].features.max_query_params or 100_000
        return max(1, min(self.batch_size, limit - 10))

    def _owned(self, user_id: UserId, ids: Sequence[int]) -> Owned:
        """Return ``{id: (read_at, archived_at, saved_at)}`` for the user's visible ``ids``."""
        qs = self.get_queryset(user_id, write=True)
        alias = self.db_for_write()
        found: Owned = {}
        for chunk in _chunks(ids, self._id_batch_size(alias)):
            for pk, *state in qs.filter(id__in=chunk).values_list("id", *_OWNED_COLUMNS):
                found[pk] = tuple(state)
        return found

    def _update(self, ids: Sequence[int], **values: Any) -> None:
        alias = self.db_for_write()
        for chunk in _chunks(ids, self._id_batch_size(alias)):
            InboxEntry.objects.using(alias).filter(id__in=chunk).update(**values)

    # Writing ----------------------------------------------------------------
    @staticmethod
    def _new_content(message: NewMessage, now: datetime) -> Message:
        """
        Return the unsaved ``Message`` row for ``message``.

        A column that takes no NULL keeps its default ("" for text) where the
        dataclass says None: a message outside any thread has ``thread = ""``.
        """
        values = message.content_values()
        for name, default in _NOT_NULL.items():
            if values[name] is None:
                values[name] = default
        return Message(**values, created=now, expires=message.expires)

    def _create_message(self, alias: str, message: NewMessage, now: datetime) -> Message:
        content = self._new_content(message, now)
        content.save(using=alias, force_insert=True)
        return content

    def _send(self, message: NewMessage, recipients: Recipients) -> Message:
        alias = self.db_for_write()
        now = message.created or timezone.now()
        with transaction.atomic(using=alias):
            content = self._create_message(alias, message, now)
            reads_ids = content.thread and self.folds_in_insert(connections[alias])
            if recipients.queryset is not None and reads_ids:
                # A query's recipients go into a thread as ids: _fold_read_users().
                # They are read before the thread's lock (sql.thread_lock()), so
                # a send waiting on it adds the recipients it read, as a list's.
                count = sum(
                    self._fold_read_users(alias, content, now, array)
                    for array in self._read_users(alias, recipients.queryset)
                )
            elif recipients.queryset is not None:
                count = self._insert_select(alias, content, recipients.queryset, now)
            else:
                count = 0
                for chunk in _chunks(list(recipients.ids), self._recipient_batch_size(alias)):
                    users, listed = self._users_with_ids(alias, chunk)
                    count += self._insert_select(alias, content, users, now, listed)
        content.recipient_count = count  # type: ignore[attr-defined]  # for the signal
        return content

    @staticmethod
    def folds_in_insert(connection: BaseDatabaseWrapper) -> bool:
        """Whether the database can fold a thread's old rows inside the insert (a DML ``WITH``)."""
        return sql.folds_in_insert(connection)

    def _recipient_batch_size(self, alias: str) -> int:
        if sql.takes_id_array(connections[alias]):
            return self.array_batch_size  # one parameter per batch, see _users_with_ids()
        return self._id_batch_size(alias)

    def _users_with_ids(
        self, alias: str, ids: Sequence[UserId]
    ) -> tuple[UserQuerySet, tuple[str, list[Any]] | None]:
        """
        Return the users among ``ids``, through the default manager as a list send always did.

        And the condition picking the same users' rows of the inbox table by
        their ids, for a send into a thread (see ``sql.threaded_fan_out()``):
        None where the ids cannot go as one parameter, or where the default
        manager leaves users out, since a listed user it hides gets no new
        row, so their row of the thread must stay, and only a join with the
        manager's query tells which rows those are. (An id with no user at
        all, whose rows a delete around Django left, loses its row of the
        thread to the history and gets none: nobody can see either.)
        """
        users = get_user_model()._default_manager.using(alias)
        connection = connections[alias]
        if not sql.takes_id_array(connection) or len(users.query.alias_map) > 1:
            # A default manager that joins would put the users table under another
            # alias once _insert_select() makes a subquery of it.
            return users.filter(pk__in=ids), None
        if users.all().query.where:
            return users.filter(sql.ids_condition(connection, users.model, ids)), None
        columns = (users.model, None), (InboxEntry, "user")
        mine, theirs = sql.ids_conditions(connection, ids, *columns)
        listed = (theirs.sql, list(theirs.params))
        return users.filter(mine), listed

    @staticmethod
    def _recipients_select(alias: str, users: UserQuerySet) -> tuple[str, Sequence[Any]] | None:
        """
        Return the ``SELECT`` of ``users``' ids as ``_pigeonhole_uid``, each user once.

        ``users`` may join groups and so repeat a user: ``distinct_users()``
        reads each once, in table order, so the inbox indexes grow at one end
        instead of all over. None for a query that can match no one
        (``pk__in=[]``, ``none()``), which Django refuses to write.
        """
        users = distinct_users(users.using(alias))
        select = users.annotate(_pigeonhole_uid=F("pk")).values_list("_pigeonhole_uid")
        try:
            statement, params = select.query.get_compiler(using=alias).as_sql()
        except EmptyResultSet:
            return None
        return statement, params

    def _insert_select(
        self,
        alias: str,
        content: Message,
        users: UserQuerySet,
        now: datetime,
        listed: tuple[str, list[Any]] | None = None,
    ) -> int:
        """
        Copy recipients into the inbox table with one statement.

        ``listed`` picks the same users' rows by their ids, for a thread (see
        ``sql.threaded_fan_out()``).
        """
        connection = connections[alias]
        recipients = self._recipients_select(alias, users)
        if recipients is None:
            return 0
        if not content.thread:
            statement, params = sql.fan_out(
                connection, content.pk, now, content.expires, recipients
            )
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
                return max(int(cursor.rowcount), 0)
        return self._fold(connection, content, now, recipients, listed)

    def _read_users(self, alias: str, users: UserQuerySet) -> list[tuple[str, tuple[Any, ...]]]:
        """
        Return arrays of the ids of ``users``, up to a batch each (``sql.id_array()``).

        Read as text, a string of ids a batch, where the key's type allows.
        """
        connection = connections[alias]
        pk = users.model._meta.pk
        db_type = pk.db_type(connection)
        if db_type not in sql.JOINABLE_TYPES:
            query = Recipients(queryset=distinct_users(users.using(alias)))
            batches = query.iter_ids(self.array_batch_size)
            return [sql.id_array(connection, pk, ids) for ids in batches]
        select = self._recipients_select(alias, users)
        if select is None:
            return []
        statement, params = sql.joined_ids(select, self.array_batch_size)
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return [sql.joined_array(db_type, joined) for (joined,) in cursor.fetchall()]

    def _fold_read_users(
        self, alias: str, content: Message, now: datetime, array: tuple[str, Sequence[Any]]
    ) -> int:
        """
        Give the users of ``array``, read in this transaction, the thread's new rows.

        PostgreSQL. Their ids go into the statement as one constant that the
        thread's rows are tested against and the new rows are read from.
        Joined with the recipients' query instead, on tables without
        statistics yet, PostgreSQL guessed one row for the thread and ran
        the query again for each of its rows: a filtered query of 10,000
        users took 3.4 s a send, and 100,000 would take minutes.
        """
        connection = connections[alias]
        recipients, listed = sql.read_recipients(connection, array)
        return self._fold(connection, content, now, recipients, listed)

    def _fold(
        self,
        connection: BaseDatabaseWrapper,
        content: Message,
        now: datetime,
        recipients: tuple[str, Sequence[Any]],
        listed: tuple[str, list[Any]] | None,
    ) -> int:
        """Run ``sql.threaded_fan_out()``; return the number of new rows."""
        folds = self.folds_in_insert(connection)
        statements = sql.threaded_fan_out(connection, content, now, recipients, folds, listed)
        # The first statement locks the thread's row (sql.thread_lock()): a
        # send into the thread at the same moment waits for this one's commit,
        # and no savepoint or retry is needed. _send()'s transaction holds it.
        with connection.cursor() as cursor:
            for statement, params in statements:  # the last one inserts the entries
                cursor.execute(statement, params)
            return max(int(cursor.rowcount), 0)

    def _insert(self, alias: str, model: type[Model], values: dict[str, Any]) -> int:
        """
        Insert one row and return its primary key, with SQL built once per model.

        Values go through each field's ``get_db_prep_save()``, as ``save()`` does,
        so JSON, datetimes and booleans are stored exactly as the ORM stores them.
        """
        connection = connections[alias]
        statement, fields, returning = self._statements.get_or_build(
            ("insert", alias, model), lambda: sql.insert(connection, model, values)
        )
        with connection.cursor() as cursor:
            cursor.execute(statement, sql.prepare(fields, values.values(), connection))
            if returning:
                return int(cursor.fetchone()[0])
            return int(
                connection.ops.last_insert_id(cursor, model._meta.db_table, model._meta.pk.column)
            )

    def _insert_both(
        self, alias: str, content: dict[str, Any], entry: dict[str, Any]
    ) -> tuple[int, int]:
        """Insert a content row and its one entry in one statement (``sql.insert_both()``)."""
        connection = connections[alias]
        statement, fields, targets = self._statements.get_or_build(
            ("insert both", alias), lambda: sql.insert_both(connection, content, entry)
        )
        params = sql.prepare([*fields, *targets], [*content.values(), *entry.values()], connection)
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            message_id, entry_id = cursor.fetchone()
        return message_id, entry_id

    def _add(self, message: NewMessage, user_id: UserId) -> StoredMessage:
        if message.thread is not None:
            # A thread row carries state over from the row it replaces: the
            # send's statements do that, and the entry is read back.
            content = self._send(message, Recipients(ids=[user_id]))
            row = (
                self.get_queryset(user_id, write=True)
                .filter(message_id=content.pk)
                .values_list(*_COLUMNS)
                .get()
            )
            stored = _row_to_stored(row)
            stored.record = content  # type: ignore[attr-defined]  # for the signal
            return stored
        alias = self.db_for_write()
        now = message.created or timezone.now()
        content = self._new_content(message, now)
        values = {field.name: getattr(content, field.attname) for field in _message_fields()}
        entry = {"user": user_id, "created": now, "expires": message.expires}
        if connections[alias].vendor == "postgresql":
            content.pk, entry_id = self._insert_both(alias, values, entry)
        else:
            # Two prepared inserts, no savepoint inside an outer transaction
            # (both rows live or die with it).
            with transaction.atomic(using=alias, savepoint=False):
                content.pk = self._insert(alias, Message, values)
                entry_id = self._insert(alias, InboxEntry, {**entry, "message": content.pk})
        content._state.adding, content._state.db = False, alias
        stored = StoredMessage.from_new(
            message,
            id=entry_id,
            message_id=content.pk,
            user_id=user_id,
            created=now,
            expires=message.expires,
        )
        stored.record = content  # type: ignore[attr-defined]  # for the message_sent signal
        return stored

    # Reading ----------------------------------------------------------------
    def _list(self, user_id: UserId, query: InboxQuery) -> list[StoredMessage]:
        if query.plain and self.uses_plain_sql:
            return self._list_plain(user_id, query.state, query.limit)
        qs = self.get_queryset(user_id)
        if query.state in _STATE_FILTERS:
            qs = qs.filter(**_STATE_FILTERS[query.state])
        if query.levels:
            qs = qs.filter(message__level__in=query.levels)
        if tag := query.tag:
            qs = qs.filter(
                Q(message__extra_tags=tag)
                | Q(message__extra_tags__startswith=f"{tag} ")
                | Q(message__extra_tags__endswith=f" {tag}")
                | Q(message__extra_tags__contains=f" {tag} ")
            )
        if query.since is not None:
            qs = qs.filter(created__gte=query.since)
        if query.before is not None:
            qs = qs.filter(created__lt=query.before)
        if query.after is not None:
            qs = qs.filter(id__lt=query.after)
        if query.reason is not None:
            qs = qs.filter(message__reason=query.reason)
        rows = qs.order_by("-id").values_list(*_COLUMNS)[: query.limit]
        return [_row_to_stored(row) for row in rows]

    def _list_plain(
        self, user_id: UserId, state: str, limit: int, *more: UserId
    ) -> list[StoredMessage]:
        """Run an unfiltered listing (every page's unread messages) from cached SQL."""
        rows = self._run_prepared(
            ("list", state, limit),
            lambda qs: (
                qs.filter(**_STATE_FILTERS[state]).order_by("-id").values_list(*_COLUMNS)[:limit]
            ),
            user_id,
            *more,
        )
        return [_row_to_stored(row) for row in rows]

    def snapshots(
        self, user_ids: Sequence[UserId], limit: int
    ) -> list[tuple[list[StoredMessage], int]]:
        """Read every user's newest entries in one statement, and their unread counts in another."""
        if not self.uses_plain_sql or not user_ids:
            return super().snapshots(user_ids, limit)
        listed: dict[UserId, list[StoredMessage]] = {user_id: [] for user_id in user_ids}
        first, *more = listed
        for entry in self._list_plain(first, "all", limit, *more):
            listed[entry.user_id].append(entry)
        counts = dict(self._count_rows(first, *more))
        return [
            (sorted(listed[user_id], key=lambda e: e.id, reverse=True), counts.get(user_id, 0))
            for user_id in user_ids
        ]

    def _run_prepared(
        self, name: tuple[Any, ...], build: Any, user_id: UserId, *more: UserId
    ) -> list[Any]:
        """
        Run ``build(visible entries of a user)`` from SQL compiled once per database and name.

        With ``more`` users, the query runs for each of them too, in the same statement.
        """
        connection = connections[self.db_for_read()]
        prepared = self._statements.get_or_build(
            (*name, connection.alias, settings.USE_TZ),
            lambda: sql.prepare_query(connection, build),
        )
        return sql.run_prepared_for(connection, prepared, [user_id, *more], timezone.now())

    def _claim_unread(self, user_id: UserId, limit: int, now: datetime) -> list[StoredMessage]:
        """
        Mark the newest unread entries read and read them back, in one statement.

        ``UPDATE ... RETURNING`` on PostgreSQL (joining the content with
        ``FROM``) and on SQLite 3.35+ (whose ``RETURNING`` may not name a
        joined table, so each content column comes from a subquery on its
        primary key). MariaDB has ``RETURNING`` on ``INSERT`` and ``DELETE``
        only: there, and for subclasses that narrow ``get_queryset()``, the
        listing and the lenient mark-read run one after the other.
        """
        alias = self.db_for_write()
        connection = connections[alias]
        if not self.uses_plain_sql or not sql.has_update_returning(connection):
            return super()._claim_unread(user_id, limit, now)
        statement = self._statements.get_or_build(("claim", alias), lambda: sql.claim(connection))
        stamp = connection.ops.adapt_datetimefield_value(now)
        with connection.cursor() as cursor:
            cursor.execute(statement, (stamp, user_id, stamp, limit))
            rows = cursor.fetchall()
        compiler, converters = self._statements.get_or_build(
            ("converters", alias, settings.USE_TZ), lambda: sql.converters(connection)
        )
        if converters:
            rows = compiler.apply_converters(rows, converters)
        entries = [_row_to_stored(row) for row in rows]
        for entry in entries:
            entry.read_at = None  # as list() returned it: unread when shown
        entries.sort(key=lambda entry: entry.id, reverse=True)
        return entries

    def _get(self, user_id: UserId, entry_id: int) -> StoredMessage | None:
        row = self.get_queryset(user_id).filter(id=entry_id).values_list(*_COLUMNS).first()
        return None if row is None else _row_to_stored(row)

    def _count(self, user_id: UserId) -> int:
        if not self.uses_plain_sql:
            return self.get_queryset(user_id).filter(**_STATE_FILTERS["unread"]).count()
        rows = self._count_rows(user_id)
        return rows[0][1] if rows else 0

    def _count_rows(self, user_id: UserId, *more: UserId) -> list[tuple[UserId, int]]:
        # Grouped by the one user filtered on: one row each, or none when there is nothing.
        return self._run_prepared(
            ("count",),
            lambda qs: (
                qs.filter(**_STATE_FILTERS["unread"])
                .values("user_id")
                .annotate(n=Count("id"))
                .values_list("user_id", "n")
            ),
            user_id,
            *more,
        )

    def _counts(self, user_id: UserId) -> dict[str, int]:
        """Count the three tabs in one aggregate query."""
        return self.get_queryset(user_id).aggregate(
            unread=Count("id", filter=Q(**_STATE_FILTERS["unread"])),
            all=Count("id", filter=Q(**_STATE_FILTERS["all"])),
            archived=Count("id", filter=Q(**_STATE_FILTERS["archived"])),
            saved=Count("id", filter=Q(**_STATE_FILTERS["saved"])),
        )

    def _unseen_count(self, user_id: UserId) -> int:
        return self.get_queryset(user_id).filter(_UNSEEN).count()

    def _thread_messages(self, user_id: UserId, entry: StoredMessage) -> list[StoredMessage]:
        """Read the thread's history, oldest first; the row itself, ``entry``, comes last."""
        history = FoldedEntry.objects.using(self.db_for_read()).filter(
            user_id=user_id, thread=entry.thread
        )
        rows = history.order_by("id").values_list(*_COLUMNS)
        return [*(_row_to_stored(row) for row in rows), entry]

    def _export_entries(self, user_id: UserId) -> list[StoredMessage]:
        alias = self.db_for_read()
        found = [
            _row_to_stored(row)
            for model in (InboxEntry, FoldedEntry)
            for row in model.objects.using(alias).filter(user_id=user_id).values_list(*_COLUMNS)
        ]
        return sorted(found, key=lambda entry: entry.id)

    def unmuted(self, recipients: Recipients, thread: str) -> Recipients:
        """
        Leave out those who muted ``thread``: a query stays a query, ids cost one more.

        A thread is muted by few people if any, so one read of up to a batch of
        them does for a list of any length. Past that, the list is looked up a
        batch at a time, the ids as one parameter where the database takes an
        array, as a send's own: an ``IN`` list of 5,000 placeholders a batch
        cost more to build and parse than a send of 100,000 into a thread took.
        """
        alias = self.db_for_read()
        mutes = Mute.objects.using(alias).filter(thread=thread)
        if recipients.queryset is not None:
            muted = mutes.values("user_id")
            return Recipients(queryset=recipients.queryset.exclude(pk__in=muted))
        ids = list(recipients.ids)
        few = list(mutes.values_list("user_id", flat=True)[: self.batch_size + 1])
        muted_ids: set[UserId] = set(few)
        if len(few) <= self.batch_size:
            return Recipients(ids=[pk for pk in ids if pk not in muted_ids])
        connection = connections[alias]
        arrays = sql.takes_id_array(connection)
        for chunk in _chunks(ids, self._recipient_batch_size(alias)):
            if arrays:
                among = mutes.filter(sql.ids_condition(connection, Mute, chunk, "user"))
            else:
                among = mutes.filter(user_id__in=chunk)
            muted_ids.update(among.values_list("user_id", flat=True))
        return Recipients(ids=[pk for pk in ids if pk not in muted_ids])

    def muted_threads(self, user_id: UserId) -> list[str]:
        mutes = Mute.objects.using(self.db_for_read()).filter(user_id=user_id)
        return list(mutes.order_by("thread").values_list("thread", flat=True))

    def _mute(self, user_id: UserId, thread: str, muted: bool) -> bool:
        alias = self.db_for_write()
        mutes = Mute.objects.using(alias)
        if not muted:
            return mutes.filter(user_id=user_id, thread=thread).delete()[0] > 0
        with transaction.atomic(using=alias):
            _, created = mutes.get_or_create(user_id=user_id, thread=thread)
        return created

    def state(self, user_id: UserId) -> InboxState:
        """
        Return the inbox in brief with one aggregate query.

        Every change either stamps an entry with a time (or id) newer than any
        before it, or removes one (delete, unread, unarchive, expiry), which
        lowers a count. So the counts and newest stamps of entries, reads and
        archivings change whenever the inbox does: a version that needs no
        column of its own.
        """
        unread = Q(read_at__isnull=True, archived_at__isnull=True)
        row = self.get_queryset(user_id).aggregate(
            unread=Count("id", filter=unread),
            unseen=Count("id", filter=_UNSEEN),
            max_level=Max("message__level", filter=unread),
            entries=Count("id"),
            last_id=Max("id"),
            last_created=Max("created"),
            reads=Count("read_at"),
            last_read=Max("read_at"),
            archived=Count("archived_at"),
            last_archived=Max("archived_at"),
            saved=Count("saved_at"),
            last_saved=Max("saved_at"),
            seen=Count("seen_at"),
            last_seen=Max("seen_at"),
        )
        stamps = [row["last_created"], row["last_read"], row["last_archived"]]
        key = "|".join(
            str(row[name])
            for name in (
                "entries",
                "last_id",
                "reads",
                "last_read",
                "archived",
                "last_archived",
                "saved",
                "last_saved",
                "seen",
                "last_seen",
            )
        )
        return InboxState(
            unread=row["unread"],
            max_level=row["max_level"],
            version=hashlib.sha256(key.encode()).hexdigest()[:32],
            modified=max((stamp for stamp in stamps if stamp is not None), default=None),
            unseen=row["unseen"],
        )

    # Changing state ---------------------------------------------------------
    #: The column each change sets, and whether it stamps it (with ``now``) or clears it.
    #: A stamp goes on entries where the column is empty, a clearing where it is not.
    _CHANGES = {
        "read": ("read_at", True),
        "unread": ("read_at", False),
        "archive": ("archived_at", True),
        "unarchive": ("archived_at", False),
        "save": ("saved_at", True),
        "unsave": ("saved_at", False),
    }

    def _change(self, user_id: UserId, change: Change) -> Outcome:
        """
        Apply ``change`` to those of the ids that are the user's, in one transaction.

        A stamp (read, archive) is one ``UPDATE`` whose row count says whether
        every id changed; a clearing (unread, unarchive) is the same where the
        database has ``UPDATE ... RETURNING``. The rest read which ids are the
        user's first, then change them: a query or two per few thousand ids.
        """
        if change.action == "read" and not change.strict:
            return Outcome(self._mark_read_lenient(user_id, list(change.ids), change.now))
        alias = self.db_for_write()
        if change.action in self._CHANGES and self._writes_in_place(alias, change.action):
            return self._change_in_place(alias, user_id, change)
        with transaction.atomic(using=alias):
            owned = self._owned(user_id, change.ids)
            missing = set(change.ids) - set(owned)
            if missing and change.strict:
                return Outcome([], missing=missing)
            if change.action == "delete":
                return self._delete(alias, user_id, change, owned)
            if change.action == "expire":
                changed = list(owned)
                self._update(changed, expires=change.expires)
                return Outcome(changed)
            column, stamps = self._CHANGES[change.action]
            index = _OWNED_COLUMNS.index(column)
            changed = [pk for pk, state in owned.items() if (state[index] is None) == stamps]
            self._update(changed, **{column: change.now if stamps else None})
        return Outcome(changed)

    def _writes_in_place(self, alias: str, action: str) -> bool:
        """Whether ``action`` can skip reading ownership first: see ``_change_in_place()``."""
        if not self.uses_plain_sql:
            return False
        return self._CHANGES[action][1] or sql.has_update_returning(connections[alias])

    def _change_in_place(self, alias: str, user_id: UserId, change: Change) -> Outcome:
        """
        Set or clear the change's column with one ``UPDATE`` per few thousand ids.

        The statement matches only the user's visible entries in the state to
        change, so when it changes as many rows as it was given ids, nothing
        more is asked. A short count means some ids are someone else's, gone,
        or already in that state: a ``SELECT`` of the user's among them tells
        which, and under ``strict`` the transaction (a savepoint inside an
        outer one) rolls the change back before ``MessageNotFound`` is raised.
        """
        column, stamps = self._CHANGES[change.action]
        connection = connections[alias]
        returning = sql.has_update_returning(connection)
        ids = list(dict.fromkeys(change.ids))
        ops = connection.ops
        value = ops.adapt_datetimefield_value(change.now) if stamps else None
        now = ops.adapt_datetimefield_value(change.now)
        changed: list[int] = []
        try:
            with transaction.atomic(using=alias), connection.cursor() as cursor:
                count = 0
                for chunk in _chunks(ids, self._id_batch_size(alias)):
                    statement = self._set_sql(alias, column, stamps, len(chunk), returning)
                    cursor.execute(statement, (value, user_id, *chunk, now))
                    if returning:
                        changed += [row[0] for row in cursor.fetchall()]
                    else:
                        count += max(cursor.rowcount, 0)
                if len(changed) == len(ids) or count == len(ids):
                    return Outcome(sorted(changed or ids, reverse=True))
                missing = set(ids) - set(self._owned(user_id, ids))
                if missing and change.strict:
                    raise _Refused(missing)
                if not returning:  # a stamp: those carrying this change's own
                    mine = self.get_queryset(user_id, write=True).filter(**{column: change.now})
                    changed = list(mine.filter(id__in=ids).values_list("id", flat=True))
        except _Refused as refused:
            return Outcome([], missing=refused.ids)
        return Outcome(sorted(changed, reverse=True))

    def _delete(self, alias: str, user_id: UserId, change: Change, owned: Owned) -> Outcome:
        """Delete the owned entries but saved ones, and the history of the threads they end."""
        unread = [pk for pk, (read_at, *_) in owned.items() if read_at is None]
        if unread and not change.allow_unread:
            return Outcome([], unread=unread)
        saved = [pk for pk, state in owned.items() if state[2] is not None]
        if saved and change.strict:
            return Outcome([], saved=saved)
        changed = [pk for pk in owned if pk not in set(saved)]
        entries = InboxEntry.objects.using(alias)
        for chunk in _chunks(changed, self._id_batch_size(alias)):
            threads = set(
                entries.filter(id__in=chunk, thread__isnull=False).values_list("thread", flat=True)
            )
            entries.filter(id__in=chunk).delete()
            if threads:
                history = FoldedEntry.objects.using(alias).filter(user_id=user_id)
                history.filter(thread__in=threads).delete()
        return Outcome(changed, saved=saved)

    def _mark_read_lenient(self, user_id: UserId, ids: list[int], now: datetime) -> list[int]:
        """
        Mark those of ``ids`` that are the user's and unread, in one statement.

        The request path runs this on every page that shows messages, so it is a
        single ``UPDATE ... RETURNING`` where the database has it. Elsewhere
        (MariaDB) the row count tells whether every id changed, as it does
        unless a concurrent request got there first; only then does a
        ``SELECT`` find the rows stamped with this call's own timestamp.
        """
        if not self.uses_plain_sql:
            return self._mark_read_lenient_orm(user_id, ids, now)
        alias = self.db_for_write()
        connection = connections[alias]
        returning = sql.has_update_returning(connection)
        stamp = connection.ops.adapt_datetimefield_value(now)
        changed: list[int] = []
        updated = 0
        with connection.cursor() as cursor:
            for chunk in _chunks(ids, self._id_batch_size(alias)):
                cursor.execute(
                    self._set_sql(alias, "read_at", True, len(chunk), returning),
                    (stamp, user_id, *chunk, stamp),
                )
                if returning:
                    changed += [row[0] for row in cursor.fetchall()]
                else:
                    updated += max(cursor.rowcount, 0)
        if returning:
            return changed
        if updated == len(ids):
            return ids
        mine = self.get_queryset(user_id, write=True).filter(read_at=now)
        return [pk for pk in mine.filter(id__in=ids).values_list("id", flat=True)]

    def _set_sql(self, alias: str, column: str, stamps: bool, size: int, returning: bool) -> str:
        """Return ``sql.set_column()``, built once per database, column and size."""
        return self._statements.get_or_build(
            ("set", alias, column, stamps, size, returning),
            lambda: sql.set_column(connections[alias], column, stamps, size, returning),
        )

    def _mark_read_lenient_orm(self, user_id: UserId, ids: list[int], now: datetime) -> list[int]:
        """The same through the ORM, for subclasses that narrow ``get_queryset()``."""
        alias = self.db_for_write()
        unread = self.get_queryset(user_id, write=True).filter(read_at__isnull=True)
        updated = 0
        for chunk in _chunks(ids, self._id_batch_size(alias)):
            updated += unread.filter(id__in=chunk).update(read_at=now)
        if updated == len(ids):
            return ids
        mine = self.get_queryset(user_id, write=True).filter(read_at=now)
        return [pk for pk in mine.filter(id__in=ids).values_list("id", flat=True)]

    #: Writes are part of the database transaction: a rollback takes them back.
    joins_transaction = True

    def _mark_all_read(
        self, user_id: UserId, before: Watermark, now: datetime, *, dry_run: bool = False
    ) -> list[int]:
        return self._stamp_up_to(user_id, before, "read_at", now, dry_run=dry_run)

    def _mark_seen(self, user_id: UserId, before: Watermark, now: datetime) -> list[int]:
        return self._stamp_up_to(user_id, before, "seen_at", now)

    def _stamp_up_to(
        self,
        user_id: UserId,
        before: Watermark,
        column: str,
        now: datetime,
        *,
        dry_run: bool = False,
    ) -> list[int]:
        """Stamp ``column`` on the unread, unarchived entries where it is empty, to a watermark."""
        qs = self.get_queryset(user_id, write=True).filter(
            **{"read_at__isnull": True, "archived_at__isnull": True, f"{column}__isnull": True}
        )
        if isinstance(before, datetime):
            qs = qs.filter(created__lte=before)
        elif before is not None:
            qs = qs.filter(id__lte=before)
        with transaction.atomic(using=self.db_for_write()):
            # Update exactly the ids read here: an entry committed meanwhile,
            # even with a lower id, stays unread.
            changed = list(qs.values_list("id", flat=True))
            if not dry_run:
                self._update(changed, **{column: now})
        return changed

    # Housekeeping -----------------------------------------------------------
    def _purge(self, purge: Purge) -> dict[str, int]:
        expired, read_before, dry_run = purge.expired, purge.read_before, purge.dry_run
        alias = self.db_for_write()
        now = timezone.now()
        entries = InboxEntry.objects.using(alias)
        messages = Message.objects.using(alias)
        counts = {"expired": 0, "read": 0, "messages": 0}
        unsaved = Q(saved_at__isnull=True)
        doomed: dict[str, Q] = {}
        if expired:
            doomed["expired"] = Q(expires__lte=now)
        if read_before is not None:
            read = Q(read_at__lt=read_before)
            doomed["read"] = read & ~Q(expires__lte=now) if expired else read
        # The rows a purge keeps: once the doomed ones are deleted, all that are left.
        # A condition on each row, not a list of the doomed: it joins the queries
        # that find a thread's rows without reading the doomed ones each time.
        staying = entries.all()
        with transaction.atomic(using=alias):
            for kind, condition in doomed.items():
                qs = entries.filter(unsaved & condition)
                if dry_run:
                    counts[kind] = qs.count()
                    staying = staying.exclude(unsaved & condition)
                    continue
                # A thread's history goes with its row, before the row: one
                # statement through the history's key, (user, thread), where
                # a statement per thread made a round trip per thread.
                qs.history().delete()
                counts[kind] = qs.delete()[0]
            orphans, threads = self._orphans(alias, staying, dry_run)
            counts["messages"] = len(orphans)
            if not dry_run:
                with history_gone():  # _orphans() found none of theirs
                    for chunk in _chunks(orphans, self._id_batch_size(alias)):
                        messages.filter(id__in=chunk).delete()
                # A thread's lock row goes with its last message (a send writes
                # it again): one row per thread, which a site of one-message
                # threads would otherwise keep one of per message.
                for keys in _chunks(sorted(threads), self._id_batch_size(alias)):
                    Thread.objects.using(alias).filter(thread__in=keys).exclude(
                        Exists(messages.filter(thread=OuterRef("thread")))
                    ).delete()
        return counts

    @staticmethod
    def _orphans(
        alias: str, staying: QuerySet[InboxEntry], dry_run: bool
    ) -> tuple[list[int], set[str]]:
        """
        Return the ids of the messages neither the ``staying`` rows nor their history holds.

        And the threads of those messages: their last one may be among them.
        One statement, two anti-joins (``NOT EXISTS``) through the indexes by
        message, however many threads there are: a thread's older messages
        are held by history alone. ``NOT IN (subquery)`` instead hashes every
        entry's message id or, past ``work_mem``, reads the entries again per
        message. A dry run has deleted no history yet, so it counts only
        history whose row stays (a lookup per history row of those messages:
        a dry run's price, not a purge's).
        """
        held_by_rows = staying.filter(message_id=OuterRef("pk"))
        held_by_history = FoldedEntry.objects.using(alias).filter(message_id=OuterRef("pk"))
        if dry_run:
            heads = staying.filter(user_id=OuterRef("user_id"), thread=OuterRef("thread"))
            held_by_history = held_by_history.filter(Exists(heads))
        orphans = Message.objects.using(alias).filter(
            ~Exists(held_by_rows), ~Exists(held_by_history)
        )
        ids, threads = [], set()
        for pk, thread in orphans.values_list("id", "thread"):
            ids.append(pk)
            if thread:
                threads.add(thread)
        return ids, threads

    # Email ------------------------------------------------------------------
    def _entries(self, *, write: bool = False) -> InboxEntryQuerySet:
        alias = self.db_for_write() if write else self.db_for_read()
        return InboxEntry.objects.using(alias).visible()

    def unmailed_for_message(
        self, message_id: int, *, after: int | None = None, limit: int = 500
    ) -> list[StoredMessage]:
        qs = self._entries().filter(message_id=message_id, emailed_at__isnull=True)
        if after is not None:
            qs = qs.filter(id__gt=after)
        return [_row_to_stored(row) for row in qs.order_by("id").values_list(*_COLUMNS)[:limit]]

    def unmailed_due(
        self,
        created_before: datetime,
        *,
        limit: int = 500,
        after: StoredMessage | None = None,
    ) -> list[StoredMessage]:
        """
        Page by ``(created, id)``: the bound on ``created`` alone starts the
        range scan of the ``created`` index at the cursor, the ``OR`` then
        drops the entries of that instant up to the cursor's id.
        """
        qs = self._entries().filter(
            read_at__isnull=True,
            archived_at__isnull=True,
            emailed_at__isnull=True,
            created__lte=created_before,
        )
        if after is not None:
            qs = qs.filter(created__gte=after.created).filter(
                Q(created__gt=after.created) | Q(id__gt=after.id)
            )
        rows = qs.order_by("created", "id").values_list(*_COLUMNS)[:limit]
        return [_row_to_stored(row) for row in rows]

    def claim_email(self, ids: Sequence[int], when: datetime) -> list[int]:
        """
        Stamp the entries in one ``UPDATE ... RETURNING`` where the database has it.

        A concurrent claim waits for the row lock and then sees ``emailed_at``
        set, so it skips the row. MariaDB, without ``UPDATE ... RETURNING``,
        locks the rows with ``SELECT ... FOR UPDATE`` first, which reads the
        latest committed state.
        """
        ids = list(ids)
        if not ids:
            return []
        alias = self.db_for_write()
        connection = connections[alias]
        claimed: list[int] = []
        for chunk in _chunks(ids, self._id_batch_size(alias)):
            qs = self._entries(write=True).filter(id__in=chunk, emailed_at__isnull=True)
            if sql.has_update_returning(connection):
                claimed += self._update_returning(alias, qs, "emailed_at", when)
            else:
                with transaction.atomic(using=alias):
                    locked = self._entries(write=True).filter(id__in=chunk).select_for_update()
                    free = [pk for pk, at in locked.values_list("id", "emailed_at") if at is None]
                    if free:
                        InboxEntry.objects.using(alias).filter(id__in=free).update(emailed_at=when)
                    claimed += free
        return claimed

    def _update_returning(
        self, alias: str, qs: InboxEntryQuerySet, column: str, value: datetime | None
    ) -> list[int]:
        connection = connections[alias]
        where_sql, where_params = qs.query.get_compiler(using=alias).compile(qs.query.where)
        with connection.cursor() as cursor:
            cursor.execute(
                sql.update_returning(connection, column, where_sql),
                (connection.ops.adapt_datetimefield_value(value), *where_params),
            )
            return [row[0] for row in cursor.fetchall()]

    def release_email(self, ids: Sequence[int], when: datetime) -> list[int]:
        alias = self.db_for_write()
        released: list[int] = []
        with transaction.atomic(using=alias):
            for chunk in _chunks(list(ids), self._id_batch_size(alias)):
                qs = InboxEntry.objects.using(alias).filter(id__in=chunk, emailed_at=when)
                mine = list(qs.select_for_update().values_list("id", flat=True))
                InboxEntry.objects.using(alias).filter(id__in=mine).update(emailed_at=None)
                released += mine
        return released

    # ``InboxEntry.user`` cascades: deleting a user through Django deletes their entries.
    forgets_with_user = True

    def forget_user(self, user_id: UserId) -> int:
        alias = self.db_for_write()
        with transaction.atomic(using=alias):
            history = FoldedEntry.objects.using(alias).filter(user_id=user_id).delete()[0]
            return InboxEntry.objects.using(alias).filter(user_id=user_id).delete()[0] + history

    # Live delivery ----------------------------------------------------------
    #: Users per statement: a broadcast to a process's 10,000 streams is one.
    deliveries_chunk = 30_000

    def deliveries(
        self, message_id: int, user_ids: Sequence[UserId]
    ) -> list[tuple[StoredMessage, int]]:
        """
        Read the users' entries of one message and their unread counts in one query.

        The count is a correlated subquery on the same index ``count()`` uses,
        so thousands of users cost one statement, not one each. The ids go as
        one parameter where the database takes an array (building an ``IN``
        list of thousands with the ORM cost more than the query), else in one
        ``IN`` list as long as the database takes that many parameters.
        """
        from django.db.models import Subquery
        from django.db.models.functions import Coalesce

        alias = self.db_for_read()
        connection = connections[alias]
        size = self.deliveries_chunk
        arrays = sql.takes_id_array(connection)
        if connection.vendor == "sqlite" and not arrays:
            connection.ensure_connection()
            limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            size = min(size, limit - 10)
        now = timezone.now()
        entries = InboxEntry.objects.using(alias).visible(now)
        unread = (
            entries.filter(user_id=OuterRef("user_id"), **_STATE_FILTERS["unread"])
            .order_by()
            .values("user_id")
            .annotate(n=Count("id"))
            .values("n")
        )
        found: list[tuple[StoredMessage, int]] = []
        for chunk in _chunks(list(user_ids), size):
            if arrays:
                among = entries.filter(sql.ids_condition(connection, InboxEntry, chunk, "user"))
            else:
                among = entries.filter(user_id__in=chunk)
            rows = list(
                among.filter(message_id=message_id)
                .annotate(unread=Coalesce(Subquery(unread), 0))
                .values_list(*_COLUMNS, "unread")
            )
            delivered = _rows_of_one_content(row[:-1] for row in rows)
            found += zip(delivered, [row[-1] for row in rows], strict=True)
        return found

    # Live delivery: a thread's moved row ----------------------------------
    def replaced(self, entries: Sequence[StoredMessage]) -> dict[int, StoredMessage]:
        """Read the rows the entries folded: two queries per thread and 500 users."""
        alias = self.db_for_read()
        threads: dict[str | None, dict[UserId, int]] = {}
        for entry in entries:
            threads.setdefault(entry.thread, {})[entry.user_id] = entry.id
        found: dict[int, StoredMessage] = {}
        for thread, newest in threads.items():
            for chunk in _chunks(list(newest), 500):
                rows = (
                    FoldedEntry.objects.using(alias)
                    .filter(thread=thread, user_id__in=chunk)
                    .filter(id__lt=max(newest[user] for user in chunk))
                    .values("user_id")
                    .annotate(old=Max("id"))
                    .values_list("user_id", "old")
                )
                olds = {old: newest[user] for user, old in rows if old < newest[user]}
                # With the user and thread, the ids are found by the history's key.
                stored = FoldedEntry.objects.using(alias).filter(
                    thread=thread, user_id__in=chunk, id__in=list(olds)
                )
                for row in stored.values_list(*_COLUMNS):
                    entry = _row_to_stored(row)
                    found[olds[entry.id]] = entry
        return found
