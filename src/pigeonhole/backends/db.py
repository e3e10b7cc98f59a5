"""
The default store: two tables in the project's own database.

Fan-out is one ``INSERT ... SELECT`` per batch, so the database copies recipient
ids itself; no user or entry objects are built in Python, however many people
a message goes to.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, router, transaction
from django.db.models import BooleanField, Count, Exists, F, Max, OuterRef, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from ..message import NewMessage, StoredMessage
from ..models import InboxEntry, Message, Mute
from .base import BaseBackend, Change, InboxQuery, InboxState, Outcome, Recipients

__all__ = ["DatabaseBackend"]

# Columns read for a StoredMessage, in one query joining entry and content.
_ENTRY_FIELDS = (
    "id",
    "message_id",
    "user_id",
    "created",
    "read_at",
    "archived_at",
    "emailed_at",
    "expires",
    "seen_at",
    "saved_at",
    "thread",
    "count",
    "senders",
)
_MESSAGE_FIELDS = (
    "level",
    "message",
    "extra_tags",
    "subject",
    "url",
    "data",
    "safe",
    "from_user_id",
    "target_content_type_id",
    "target_object_id",
    "in_reply_to_id",
    "close_timeout",
    "category",
    "email",
    "reason",
)
_COLUMNS = _ENTRY_FIELDS + tuple(f"message__{name}" for name in _MESSAGE_FIELDS)
_NAMES = _ENTRY_FIELDS + _MESSAGE_FIELDS


def _row_to_stored(row: Sequence[Any]) -> StoredMessage:
    values = dict(zip(_NAMES, row, strict=True))
    values["senders"] = _senders(values["senders"])
    return StoredMessage(**values)


#: Longest ``InboxEntry.senders``: room for three ids of up to 50 characters.
_SENDERS_LENGTH = 160


def _senders(stored: str) -> list[Any]:
    """Return the user ids in a ``senders`` column (",id,id,"), the newest three."""
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


def _message_fields() -> list[Any]:
    """Every concrete field of ``Message`` but its primary key, as an insert writes them."""
    return [f for f in Message._meta.concrete_fields if not f.primary_key]


def _chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _columns(connection, model) -> dict[str, str]:
    """Return ``{field name or attname: quoted column}`` of ``model`` on ``connection``."""
    quote = connection.ops.quote_name
    names: dict[str, str] = {}
    for field in model._meta.concrete_fields:
        names[field.name] = names[field.attname] = quote(field.column)
    return names


def _fields(model: Any, names: Iterable[str]) -> list[Any]:
    """Return the concrete fields of ``model`` named ``names``, in that order."""
    by_name = {}
    for field in model._meta.concrete_fields:
        by_name[field.name] = by_name[field.attname] = field
    return [by_name[name] for name in names]


def _prepare(fields: Sequence[Any], values: Iterable[Any], connection) -> list[Any]:
    """
    Return ``values`` as each field's ``get_db_prep_save()`` gives them, as ``save()`` does.

    None is NULL for every field of these two models, and most of a message's
    optional fields are None: they skip the field's conversion chain.
    """
    return [
        None if value is None else field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values, strict=True)
    ]


def _has_update_returning(connection) -> bool:
    if connection.vendor == "postgresql":
        return True
    if connection.vendor == "sqlite":
        import sqlite3

        return sqlite3.sqlite_version_info >= (3, 35)
    return False  # MariaDB has RETURNING for INSERT and DELETE, not UPDATE


class _Refused(Exception):
    """Raised inside a change's transaction to roll it back; carries the ids refused."""

    def __init__(self, ids: Any) -> None:
        super().__init__(ids)
        self.ids = ids


class DatabaseBackend(BaseBackend):
    """
    Store messages with the Django ORM.

    ``OPTIONS = {"using": "alias"}`` pins a database; by default the project's
    database routers decide, as for any other model.
    """

    #: Recipients per ``INSERT ... SELECT`` when they come as a list of ids.
    batch_size = 5000

    def __init__(self, *, using: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.using = using
        # SQL of the request path's statements, built once per database and shape:
        # building a query with the ORM costs several times what running it does.
        self._statements: dict[tuple[Any, ...], Any] = {}

    # Helpers ----------------------------------------------------------------
    def on_commit(self, func) -> None:
        transaction.on_commit(func, using=self.db_for_write())

    def in_transaction(self) -> bool:
        return connections[self.db_for_write()].in_atomic_block

    def db_for_write(self) -> str:
        return self.using or router.db_for_write(InboxEntry)

    def db_for_read(self) -> str:
        return self.using or router.db_for_read(InboxEntry)

    def get_queryset(self, user_id: Any, *, write: bool = False):
        """Return this user's visible entries; every read and write starts here."""
        alias = self.db_for_write() if write else self.db_for_read()
        return InboxEntry.objects.using(alias).filter(user_id=user_id).visible()

    def _id_batch_size(self, alias: str) -> int:
        limit = connections[alias].features.max_query_params or 100_000
        return max(1, min(self.batch_size, limit - 10))

    def _owned(self, user_id: Any, ids: Sequence[Any]) -> dict[Any, tuple[Any, ...]]:
        """Return ``{id: (read_at, archived_at, saved_at)}`` for the user's visible ``ids``."""
        qs = self.get_queryset(user_id, write=True)
        alias = self.db_for_write()
        found: dict[Any, tuple[Any, ...]] = {}
        for chunk in _chunks(ids, self._id_batch_size(alias)):
            for pk, *state in qs.filter(id__in=chunk).values_list("id", *_OWNED_COLUMNS):
                found[pk] = tuple(state)
        return found

    def _update(self, ids: Sequence[Any], **values: Any) -> None:
        alias = self.db_for_write()
        for chunk in _chunks(ids, self._id_batch_size(alias)):
            InboxEntry.objects.using(alias).filter(id__in=chunk).update(**values)

    # Writing ----------------------------------------------------------------
    @staticmethod
    def _new_content(message: NewMessage, now: datetime) -> Message:
        """Return the unsaved ``Message`` row for ``message``: one place maps the fields."""
        return Message(
            level=message.level,
            message=message.message,
            subject=message.subject,
            extra_tags=message.extra_tags,
            url=message.url,
            data=message.data,
            safe=message.safe,
            from_user_id=message.from_user_id,
            target_content_type_id=message.target_content_type_id,
            target_object_id=message.target_object_id,
            in_reply_to_id=message.in_reply_to_id,
            close_timeout=message.close_timeout,
            email=message.email,
            category=message.category,
            thread=message.thread or "",
            reason=message.reason,
            created=now,
            expires=message.expires,
        )

    def _create_message(self, alias: str, message: NewMessage, now: datetime) -> Message:
        content = self._new_content(message, now)
        content.save(using=alias, force_insert=True)
        return content

    def _send(self, message: NewMessage, recipients: Recipients) -> Message:
        alias = self.db_for_write()
        now = message.created or timezone.now()
        with transaction.atomic(using=alias):
            content = self._create_message(alias, message, now)
            if recipients.queryset is not None:
                count = self._insert_select(alias, content, recipients.queryset, now)
            else:
                count = 0
                for chunk in _chunks(list(recipients.ids), self._recipient_batch_size(alias)):
                    users = self._users_with_ids(alias, chunk)
                    count += self._insert_select(alias, content, users, now)
            if message.thread is not None and not self.folds_in_insert(connections[alias]):
                self._fold(alias, content)
        content.recipient_count = count  # type: ignore[attr-defined]  # for the signal
        return content

    @staticmethod
    def folds_in_insert(connection: Any) -> bool:
        """Whether the database can fold a thread's old rows inside the insert (a DML ``WITH``)."""
        return connection.vendor == "postgresql"

    def _fold(self, alias: str, content: Message) -> None:
        """
        Make the new entries of a threaded message their thread's rows.

        ``_insert_select()`` wrote them folded where the recipient already had a
        row, which the unique (user, thread) index still holds: fold those rows,
        then unfold the new entries. Two statements, whatever the recipients.
        """
        connection = connections[alias]
        ops = connection.ops
        table = ops.quote_name(InboxEntry._meta.db_table)

        names = _columns(connection, InboxEntry)

        def column(name: str) -> str:
            return names[name]

        folded, message, user = column("folded"), column("message"), column("user")
        with connection.cursor() as cursor:
            # MariaDB reads a table it updates only through a derived table.
            cursor.execute(
                f"UPDATE {table} SET {folded} = %s WHERE {column('thread')} = %s "
                f"AND {folded} = %s AND {message} <> %s AND {user} IN "
                f"(SELECT fresh.{user} FROM (SELECT {user} FROM {table} "
                f"WHERE {message} = %s) fresh)",
                (True, content.thread, False, content.pk, content.pk),
            )
            if cursor.rowcount:
                cursor.execute(
                    f"UPDATE {table} SET {folded} = %s WHERE {message} = %s AND {folded} = %s",
                    (False, content.pk, True),
                )

    def _recipient_batch_size(self, alias: str) -> int:
        if connections[alias].vendor in ("postgresql", "sqlite"):
            return self.batch_size  # one parameter per batch, see _users_with_ids()
        return self._id_batch_size(alias)

    def _users_with_ids(self, alias: str, ids: Sequence[Any]):
        """
        Return the users among ``ids``, through the default manager as a list send always did.

        PostgreSQL takes the ids as one array (``id = ANY(%s)``) and SQLite as one
        JSON array (``json_each``, which JSONField already requires): an ``IN``
        list of thousands of placeholders cost more to parse than the insert took,
        and SQLite would need a statement per 999 of them.
        """
        users = get_user_model()._default_manager.using(alias)
        connection = connections[alias]
        if connection.vendor not in ("postgresql", "sqlite") or len(users.query.alias_map) > 1:
            # A default manager that joins would put the users table under another
            # alias once _insert_select() makes a subquery of it.
            return users.filter(pk__in=ids)
        pk = users.model._meta.pk
        quote = connection.ops.quote_name
        column = f"{quote(users.model._meta.db_table)}.{quote(pk.column)}"
        values = [pk.get_db_prep_value(value, connection) for value in ids]
        if connection.vendor == "postgresql":
            condition = RawSQL(f"{column} = ANY(%s)", (values,), output_field=BooleanField())
        else:
            condition = RawSQL(
                f"{column} IN (SELECT value FROM json_each(%s))",
                (json.dumps(values, cls=DjangoJSONEncoder),),
                output_field=BooleanField(),
            )
        return users.filter(condition)

    def _insert_select(self, alias: str, content: Message, users, now: datetime) -> int:
        """
        Copy recipients into the inbox table with one statement.

        ``users`` may join groups and so repeat a user. Such a query becomes
        ``WHERE id IN (query)``, a semi-join: one entry per person, and users
        read in table order, so the inbox indexes grow at one end instead of
        all over (several times faster than ``DISTINCT`` on PostgreSQL). A
        query without joins cannot repeat a primary key and runs as it is.
        """
        connection = connections[alias]
        ops = connection.ops
        users = users.using(alias).order_by()
        if len(users.query.alias_map) > 1:
            users = users.model._base_manager.using(alias).filter(pk__in=users.values("pk"))
        select = users.annotate(_pigeonhole_uid=F("pk")).values_list("_pigeonhole_uid")
        select_sql, select_params = select.query.get_compiler(using=alias).as_sql()
        table = ops.quote_name(InboxEntry._meta.db_table)
        columns = ", ".join(
            ops.quote_name(InboxEntry._meta.get_field(name).column)  # type: ignore[union-attr, arg-type]
            for name in ("user", "message", "created", "expires")
        )
        values = (
            content.pk,
            ops.adapt_datetimefield_value(now),
            ops.adapt_datetimefield_value(content.expires),
        )
        if content.thread:
            return self._insert_threaded(alias, content, select_sql, [*values, *select_params])
        sql = (
            f"INSERT INTO {table} ({columns}) "
            f"SELECT recipients._pigeonhole_uid, %s, %s, %s FROM ({select_sql}) recipients"
        )
        params = (*values, *select_params)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return max(cursor.rowcount, 0)

    def _insert_threaded(
        self, alias: str, content: Message, select_sql: str, params: list[Any]
    ) -> int:
        """
        Insert the entries of a threaded message, skipping those who muted the thread.

        Each entry takes over the recipient's current row of the thread (joined
        as ``old``): its saved state, its count unless the row was read since,
        and its senders, with this message's sender moved to the front. Where
        there is such a row the entry starts folded, for ``_fold()``.

        PostgreSQL folds the old rows in the same statement instead (an
        ``UPDATE ... RETURNING`` in a ``WITH``, joined as ``old``), so each
        recipient's rows are written once: a third of the work.
        """
        connection = connections[alias]
        ops = connection.ops
        table = ops.quote_name(InboxEntry._meta.db_table)
        mutes = ops.quote_name(Mute._meta.db_table)

        def column(name: str, model: Any = InboxEntry) -> str:
            return ops.quote_name(model._meta.get_field(name).column)

        def concat(*parts: str) -> str:
            if connection.vendor == "mysql":
                return f"CONCAT({', '.join(parts)})"
            return " || ".join(parts)

        names: tuple[str, ...] = ("user", "message", "created", "expires", "thread", "folded")
        names += ("count", "senders", "saved_at")
        old_senders = f"old.{column('senders')}"
        sender = content.from_user_id
        if sender is None:
            senders, sender_params = f"COALESCE({old_senders}, %s)", [""]
        else:
            previous = f"REPLACE(COALESCE(NULLIF({old_senders}, %s), %s), %s, %s)"
            senders = f"SUBSTR({concat('%s', previous)}, 1, {_SENDERS_LENGTH})"
            sender_params = [f",{sender}", "", ",", f",{sender},", ","]
        uid = "recipients._pigeonhole_uid"
        unmuted = (
            f"NOT IN (SELECT {column('user', Mute)} FROM {mutes} "
            f"WHERE {column('thread', Mute)} = %s)"
        )
        values, select_params = params[:3], params[3:]
        thread = content.thread
        select = (
            f"SELECT {uid}, %s, %s, %s, %s, "
            f"CASE WHEN old.{column('id')} IS NULL THEN %s ELSE %s END, "
            f"CASE WHEN old.{column('id')} IS NULL OR old.{column('read_at')} IS NOT NULL "
            f"THEN 1 ELSE old.{column('count')} + 1 END, "
            f"{senders}, old.{column('saved_at')} "
            f"FROM ({select_sql}) recipients "
        )
        insert = f"INSERT INTO {table} ({', '.join(column(name) for name in names)}) "
        if self.folds_in_insert(connection):
            returning = ", ".join(
                column(name) for name in ("user", "id", "read_at", "count", "senders", "saved_at")
            )
            sql = (
                f"WITH old AS (UPDATE {table} SET {column('folded')} = %s "
                f"WHERE {column('thread')} = %s AND {column('folded')} = %s "
                f"AND {column('user')} IN (SELECT {uid} FROM ({select_sql}) recipients) "
                f"AND {column('user')} {unmuted} RETURNING {returning}) "
                f"{insert}{select}"
                f"LEFT JOIN old ON old.{column('user')} = {uid} WHERE {uid} {unmuted}"
            )
            params = [True, thread, False, *select_params, thread]
            params += [*values, thread, False, False, *sender_params, *select_params, thread]
        else:
            sql = (
                f"{insert}{select}"
                f"LEFT JOIN {table} old ON old.{column('user')} = {uid} "
                f"AND old.{column('thread')} = %s AND old.{column('folded')} = %s "
                f"WHERE {uid} {unmuted}"
            )
            params = [*values, thread, False, True, *sender_params, *select_params]
            params += [thread, False, thread]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return max(cursor.rowcount, 0)

    def _insert(self, alias: str, model: Any, values: dict[str, Any]) -> Any:
        """
        Insert one row and return its primary key, with SQL built once per model.

        Values go through each field's ``get_db_prep_save()``, as ``save()`` does,
        so JSON, datetimes and booleans are stored exactly as the ORM stores them.
        """
        connection = connections[alias]
        key = ("insert", alias, model)
        statement = self._statements.get(key)
        if statement is None:
            ops = connection.ops
            fields = _fields(model, values)
            columns = ", ".join(ops.quote_name(field.column) for field in fields)
            sql = (
                f"INSERT INTO {ops.quote_name(model._meta.db_table)} ({columns}) "
                f"VALUES ({', '.join(['%s'] * len(fields))})"
            )
            returning = connection.features.can_return_columns_from_insert
            if returning:
                sql += f" RETURNING {ops.quote_name(model._meta.pk.column)}"
            statement = self._statements[key] = (sql, fields, returning)
        sql, fields, returning = statement
        params = _prepare(fields, values.values(), connection)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if returning:
                return cursor.fetchone()[0]
            return connection.ops.last_insert_id(
                cursor, model._meta.db_table, model._meta.pk.column
            )

    def _insert_both(
        self, alias: str, content: dict[str, Any], entry: dict[str, Any]
    ) -> tuple[Any, Any]:
        """
        Insert a content row and its one entry in one statement; return both ids.

        PostgreSQL runs an ``INSERT ... RETURNING`` inside a ``WITH``, so the
        request path's ``add()`` is one round trip. SQLite and MariaDB allow no
        data-changing statement in a ``WITH``: they insert twice.
        """
        connection = connections[alias]
        key = ("insert both", alias)
        statement = self._statements.get(key)
        if statement is None:
            quote = connection.ops.quote_name
            fields = _fields(Message, content)
            targets = _fields(InboxEntry, entry)
            names = _columns(connection, InboxEntry)
            sql = (
                f"WITH m AS (INSERT INTO {quote(Message._meta.db_table)} "
                f"({', '.join(quote(field.column) for field in fields)}) "
                f"VALUES ({', '.join(['%s'] * len(fields))}) "
                f"RETURNING {quote(Message._meta.pk.column)}) "
                f"INSERT INTO {quote(InboxEntry._meta.db_table)} "
                f"({', '.join(quote(field.column) for field in targets)}, {names['message']}) "
                f"SELECT {', '.join(['%s'] * len(targets))}, m.{quote(Message._meta.pk.column)} "
                f"FROM m RETURNING {names['message']}, {names['id']}"
            )
            statement = self._statements[key] = (sql, fields, targets)
        sql, fields, targets = statement
        params = _prepare([*fields, *targets], [*content.values(), *entry.values()], connection)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            message_id, entry_id = cursor.fetchone()
        return message_id, entry_id

    def _add(self, message: NewMessage, user_id: Any) -> StoredMessage:
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
    def _list(self, user_id: Any, query: InboxQuery) -> list[StoredMessage]:
        if query.plain and type(self).get_queryset is DatabaseBackend.get_queryset:
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

    _LIST_USER = -918_273_645  # stand-ins, replaced by position in the cached parameters
    _LIST_NOW = datetime(1901, 2, 3, 4, 5, 6, 789, tzinfo=UTC)

    def _list_plain(self, user_id: Any, state: str, limit: int) -> list[StoredMessage]:
        """Run an unfiltered listing (every page's unread messages) from cached SQL."""
        rows = self._run_prepared(
            ("list", state, limit),
            lambda qs: (
                qs.filter(**_STATE_FILTERS[state]).order_by("-id").values_list(*_COLUMNS)[:limit]
            ),
            user_id,
        )
        return [_row_to_stored(row) for row in rows]

    def _run_prepared(self, name: tuple[Any, ...], build: Any, user_id: Any) -> list[Any]:
        """
        Run the query ``build(visible entries of a user)`` from SQL compiled once.

        The ORM builds it once per database and ``name``, with stand-in values
        whose positions among the parameters are noted; later calls put the
        real user and time there and only run it. Building and compiling a
        QuerySet costs more than running these indexed queries.
        """
        alias = self.db_for_read()
        key = (*name, alias, settings.USE_TZ)
        statement = self._statements.get(key)
        connection = connections[alias]
        if statement is None:
            stand_in = self._LIST_NOW if settings.USE_TZ else self._LIST_NOW.replace(tzinfo=None)
            qs = build(
                InboxEntry.objects.using(alias).filter(user_id=self._LIST_USER).visible(stand_in)
            )
            compiler = qs.query.get_compiler(using=alias)
            sql, params = compiler.as_sql()
            now = connection.ops.adapt_datetimefield_value(stand_in)
            positions = {
                "user": [i for i, p in enumerate(params) if p == self._LIST_USER],
                "now": [i for i, p in enumerate(params) if p == now],
            }
            if len(positions["user"]) != 1 or len(positions["now"]) != 1:
                raise RuntimeError(f"Cannot prepare the query: {sql} {params}")
            converters = compiler.get_converters([col for col, _, _ in compiler.select])
            statement = self._statements[key] = (sql, list(params), positions, compiler, converters)
        sql, params, positions, compiler, converters = statement
        params = list(params)
        params[positions["user"][0]] = user_id
        params[positions["now"][0]] = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if converters:
            rows = list(compiler.apply_converters(rows, converters))
        return rows

    def _claim_unread(self, user_id: Any, limit: int, now: datetime) -> list[StoredMessage]:
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
        if type(self).get_queryset is not DatabaseBackend.get_queryset or not _has_update_returning(
            connection
        ):
            return super()._claim_unread(user_id, limit, now)
        sql = self._claim_sql(alias)
        stamp = connection.ops.adapt_datetimefield_value(now)
        with connection.cursor() as cursor:
            cursor.execute(sql, (stamp, user_id, stamp, limit))
            rows = cursor.fetchall()
        compiler, converters = self._converters(alias)
        if converters:
            rows = compiler.apply_converters(rows, converters)
        entries = [_row_to_stored(row) for row in rows]
        for entry in entries:
            entry.read_at = None  # as list() returned it: unread when shown
        entries.sort(key=lambda entry: entry.id, reverse=True)
        return entries

    def _claim_sql(self, alias: str) -> str:
        """Return the claiming ``UPDATE ... RETURNING``, built once per database."""
        key = ("claim", alias)
        sql = self._statements.get(key)
        if sql is not None:
            return sql
        connection = connections[alias]
        quote = connection.ops.quote_name
        entry, content = _columns(connection, InboxEntry), _columns(connection, Message)
        table = quote(InboxEntry._meta.db_table)
        newest = (
            f"SELECT {entry['id']} FROM {table} WHERE {entry['user']} = %s "
            f"AND {entry['read_at']} IS NULL AND {entry['archived_at']} IS NULL "
            f"AND ({entry['expires']} IS NULL OR {entry['expires']} > %s) "
            f"AND NOT {entry['folded']} ORDER BY {entry['id']} DESC LIMIT %s"
        )
        # SQLite's RETURNING knows the updated table by its name only, not an alias.
        postgres = connection.vendor == "postgresql"
        e = "e" if postgres else table
        # Re-checked on the row itself: a concurrent claim that got there first wins it.
        where = f"{e}.{entry['id']} IN ({newest}) AND {e}.{entry['read_at']} IS NULL"
        returning = ", ".join(f"{e}.{entry[name]}" for name in _ENTRY_FIELDS)
        if postgres:
            joined = ", ".join(f"m.{content[name]}" for name in _MESSAGE_FIELDS)
            sql = (
                f"UPDATE {table} AS e SET {entry['read_at']} = %s "
                f"FROM {quote(Message._meta.db_table)} AS m "
                f"WHERE m.{content['id']} = e.{entry['message']} AND {where} "
                f"RETURNING {returning}, {joined}"
            )
        else:
            joined = ", ".join(
                f"(SELECT m.{content[name]} FROM {quote(Message._meta.db_table)} AS m "
                f"WHERE m.{content['id']} = {e}.{entry['message']})"
                for name in _MESSAGE_FIELDS
            )
            sql = (
                f"UPDATE {table} SET {entry['read_at']} = %s WHERE {where} "
                f"RETURNING {returning}, {joined}"
            )
        self._statements[key] = sql
        return sql

    def _converters(self, alias: str) -> tuple[Any, list[Any]]:
        """Return the compiler and converters that turn raw ``_COLUMNS`` rows into values."""
        key = ("converters", alias, settings.USE_TZ)
        statement = self._statements.get(key)
        if statement is None:
            qs = InboxEntry.objects.using(alias).values_list(*_COLUMNS)
            compiler = qs.query.get_compiler(using=alias)
            compiler.as_sql()
            converters = compiler.get_converters([col for col, _, _ in compiler.select])
            statement = self._statements[key] = (compiler, converters)
        return statement

    def _get(self, user_id: Any, entry_id: Any) -> StoredMessage | None:
        row = self.get_queryset(user_id).filter(id=entry_id).values_list(*_COLUMNS).first()
        return None if row is None else _row_to_stored(row)

    def _count(self, user_id: Any) -> int:
        if type(self).get_queryset is not DatabaseBackend.get_queryset:
            return self.get_queryset(user_id).filter(**_STATE_FILTERS["unread"]).count()
        # Grouped by the one user filtered on: one row, or none when there is nothing.
        rows = self._run_prepared(
            ("count",),
            lambda qs: (
                qs.filter(**_STATE_FILTERS["unread"])
                .values("user_id")
                .annotate(n=Count("id"))
                .values_list("n")
            ),
            user_id,
        )
        return rows[0][0] if rows else 0

    def _counts(self, user_id: Any) -> dict[str, int]:
        """Count the three tabs in one aggregate query."""
        return self.get_queryset(user_id).aggregate(
            unread=Count("id", filter=Q(**_STATE_FILTERS["unread"])),
            all=Count("id", filter=Q(**_STATE_FILTERS["all"])),
            archived=Count("id", filter=Q(**_STATE_FILTERS["archived"])),
            saved=Count("id", filter=Q(**_STATE_FILTERS["saved"])),
        )

    def _unseen_count(self, user_id: Any) -> int:
        return self.get_queryset(user_id).filter(_UNSEEN).count()

    def _thread_messages(self, user_id: Any, entry: StoredMessage) -> list[StoredMessage]:
        qs = InboxEntry.objects.using(self.db_for_read()).filter(
            user_id=user_id, thread=entry.thread
        )
        return [_row_to_stored(row) for row in qs.order_by("id").values_list(*_COLUMNS)]

    def _export_entries(self, user_id: Any) -> list[StoredMessage]:
        qs = InboxEntry.objects.using(self.db_for_read()).filter(user_id=user_id)
        return [_row_to_stored(row) for row in qs.order_by("id").values_list(*_COLUMNS)]

    def unmuted(self, recipients: Recipients, thread: str) -> Recipients:
        """Leave out those who muted ``thread``: a query stays a query, ids cost one more."""
        mutes = Mute.objects.using(self.db_for_read()).filter(thread=thread)
        if recipients.queryset is not None:
            muted = mutes.values("user_id")
            return Recipients(queryset=recipients.queryset.exclude(pk__in=muted))
        ids = list(recipients.ids)
        muted_ids: set[Any] = set()
        for chunk in _chunks(ids, self._id_batch_size(self.db_for_read())):
            muted_ids.update(mutes.filter(user_id__in=chunk).values_list("user_id", flat=True))
        return Recipients(ids=[pk for pk in ids if pk not in muted_ids])

    def muted_threads(self, user_id: Any) -> list[str]:
        mutes = Mute.objects.using(self.db_for_read()).filter(user_id=user_id)
        return list(mutes.order_by("thread").values_list("thread", flat=True))

    def _mute(self, user_id: Any, thread: str, muted: bool) -> bool:
        alias = self.db_for_write()
        mutes = Mute.objects.using(alias)
        if not muted:
            return mutes.filter(user_id=user_id, thread=thread).delete()[0] > 0
        with transaction.atomic(using=alias):
            _, created = mutes.get_or_create(user_id=user_id, thread=thread)
        return created

    def state(self, user_id: Any) -> InboxState:
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

    def _change(self, user_id: Any, change: Change) -> Outcome:
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
        if type(self).get_queryset is not DatabaseBackend.get_queryset:
            return False
        return self._CHANGES[action][1] or _has_update_returning(connections[alias])

    def _change_in_place(self, alias: str, user_id: Any, change: Change) -> Outcome:
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
        returning = _has_update_returning(connection)
        ids = list(dict.fromkeys(change.ids))
        ops = connection.ops
        value = ops.adapt_datetimefield_value(change.now) if stamps else None
        now = ops.adapt_datetimefield_value(change.now)
        changed: list[Any] = []
        try:
            with transaction.atomic(using=alias), connection.cursor() as cursor:
                count = 0
                for chunk in _chunks(ids, self._id_batch_size(alias)):
                    sql = self._set_sql(alias, column, stamps, len(chunk), returning)
                    cursor.execute(sql, (value, user_id, *chunk, now))
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

    def _delete(self, alias: str, user_id: Any, change: Change, owned: dict) -> Outcome:
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
                entries.filter(user_id=user_id, thread__in=threads, folded=True).delete()
        return Outcome(changed, saved=saved)

    def _mark_read_lenient(self, user_id: Any, ids: list[Any], now: datetime) -> list[Any]:
        """
        Mark those of ``ids`` that are the user's and unread, in one statement.

        The request path runs this on every page that shows messages, so it is a
        single ``UPDATE ... RETURNING`` where the database has it. Elsewhere
        (MariaDB) the row count tells whether every id changed, as it does
        unless a concurrent request got there first; only then does a
        ``SELECT`` find the rows stamped with this call's own timestamp.
        """
        if type(self).get_queryset is not DatabaseBackend.get_queryset:
            return self._mark_read_lenient_orm(user_id, ids, now)
        alias = self.db_for_write()
        connection = connections[alias]
        returning = _has_update_returning(connection)
        stamp = connection.ops.adapt_datetimefield_value(now)
        changed: list[Any] = []
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
        """
        Return the ``UPDATE`` that stamps (or clears) ``column`` on ``size`` ids of a user.

        Only visible entries in the other state match, so the row count is
        the number changed. Built once per database, column and size.
        """
        key = ("set", alias, column, stamps, size, returning)
        sql = self._statements.get(key)
        if sql is None:
            connection = connections[alias]
            names = _columns(connection, InboxEntry)
            target, expires = names[column], names["expires"]
            sql = (
                f"UPDATE {connection.ops.quote_name(InboxEntry._meta.db_table)} "
                f"SET {target} = %s WHERE {names['user']} = %s AND {names['id']} IN "
                f"({', '.join(['%s'] * size)}) AND {target} IS {'' if stamps else 'NOT '}NULL "
                f"AND ({expires} IS NULL OR {expires} > %s) AND NOT {names['folded']}"
            )
            if returning:
                sql += f" RETURNING {names['id']}"
            self._statements[key] = sql
        return sql

    def _mark_read_lenient_orm(self, user_id: Any, ids: list[Any], now: datetime) -> list[Any]:
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
        self, user_id: Any, before: Any, now: datetime, *, dry_run: bool = False
    ) -> list[Any]:
        return self._stamp_up_to(user_id, before, "read_at", now, dry_run=dry_run)

    def _mark_seen(self, user_id: Any, before: Any, now: datetime) -> list[Any]:
        return self._stamp_up_to(user_id, before, "seen_at", now)

    def _stamp_up_to(
        self, user_id: Any, before: Any, column: str, now: datetime, *, dry_run: bool = False
    ) -> list[Any]:
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
    def purge(
        self,
        *,
        expired: bool = True,
        read_before: datetime | None = None,
        dry_run: bool = False,
    ) -> dict[str, int]:
        alias = self.db_for_write()
        now = timezone.now()
        entries = InboxEntry.objects.using(alias)
        messages = Message.objects.using(alias)
        counts = {"expired": 0, "read": 0, "messages": 0}
        rows = entries.filter(folded=False, saved_at__isnull=True)
        with transaction.atomic(using=alias):
            if expired:
                doomed = rows.filter(expires__lte=now)
                counts["expired"] = doomed.count() if dry_run else doomed.delete()[0]
            if read_before is not None:
                doomed = rows.filter(read_at__lt=read_before)
                if expired:
                    doomed = doomed.exclude(expires__lte=now)
                counts["read"] = doomed.count() if dry_run else doomed.delete()[0]
            # A thread's history goes with its row.
            heads = entries.filter(
                folded=False, user_id=OuterRef("user_id"), thread=OuterRef("thread")
            )
            if dry_run:
                # Messages that would be left with no entry at all.
                kept = entries.exclude(folded=False, saved_at__isnull=True, expires__lte=now)
                if not expired:
                    kept = entries
                if read_before is not None:
                    kept = kept.exclude(
                        folded=False, saved_at__isnull=True, read_at__lt=read_before
                    )
                counts["messages"] = messages.exclude(id__in=kept.values("message_id")).count()
            else:
                entries.filter(folded=True).exclude(Exists(heads)).delete()
                orphans = list(messages.filter(entries__isnull=True).values_list("id", flat=True))
                for chunk in _chunks(orphans, self._id_batch_size(alias)):
                    messages.filter(id__in=chunk).delete()
                counts["messages"] = len(orphans)
        return counts

    # Email ------------------------------------------------------------------
    def _entries(self, *, write: bool = False):
        alias = self.db_for_write() if write else self.db_for_read()
        return InboxEntry.objects.using(alias).visible()

    def unmailed_for_message(
        self, message_id: Any, *, after: Any = None, limit: int = 500
    ) -> list[StoredMessage]:
        qs = self._entries().filter(message_id=message_id, emailed_at__isnull=True)
        if after is not None:
            qs = qs.filter(id__gt=after)
        return [_row_to_stored(row) for row in qs.order_by("id").values_list(*_COLUMNS)[:limit]]

    def unmailed_due(
        self, created_before: datetime, *, limit: int = 500, offset: int = 0
    ) -> list[StoredMessage]:
        qs = self._entries().filter(
            read_at__isnull=True,
            archived_at__isnull=True,
            emailed_at__isnull=True,
            created__lte=created_before,
        )
        rows = qs.order_by("created", "id").values_list(*_COLUMNS)[offset : offset + limit]
        return [_row_to_stored(row) for row in rows]

    def claim_email(self, ids: Sequence[Any], when: datetime) -> list[Any]:
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
        claimed: list[Any] = []
        for chunk in _chunks(ids, self._id_batch_size(alias)):
            qs = self._entries(write=True).filter(id__in=chunk, emailed_at__isnull=True)
            if _has_update_returning(connection):
                claimed += self._update_returning(alias, qs, "emailed_at", when)
            else:
                with transaction.atomic(using=alias):
                    locked = self._entries(write=True).filter(id__in=chunk).select_for_update()
                    free = [pk for pk, at in locked.values_list("id", "emailed_at") if at is None]
                    if free:
                        InboxEntry.objects.using(alias).filter(id__in=free).update(emailed_at=when)
                    claimed += free
        return claimed

    def _update_returning(self, alias: str, qs, column: str, value: Any) -> list[Any]:
        connection = connections[alias]
        ops = connection.ops
        field = InboxEntry._meta.get_field
        table = ops.quote_name(InboxEntry._meta.db_table)
        target = ops.quote_name(field(column).column)  # type: ignore[union-attr, arg-type]
        pk = ops.quote_name(field("id").column)  # type: ignore[union-attr, arg-type]
        where_sql, where_params = qs.query.get_compiler(using=alias).compile(qs.query.where)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {target} = %s WHERE {where_sql} RETURNING {pk}",
                (ops.adapt_datetimefield_value(value), *where_params),
            )
            return [row[0] for row in cursor.fetchall()]

    def release_email(self, ids: Sequence[Any], when: datetime) -> list[Any]:
        alias = self.db_for_write()
        released: list[Any] = []
        with transaction.atomic(using=alias):
            for chunk in _chunks(list(ids), self._id_batch_size(alias)):
                qs = InboxEntry.objects.using(alias).filter(id__in=chunk, emailed_at=when)
                mine = list(qs.select_for_update().values_list("id", flat=True))
                InboxEntry.objects.using(alias).filter(id__in=mine).update(emailed_at=None)
                released += mine
        return released

    # ``InboxEntry.user`` cascades: deleting a user through Django deletes their entries.
    forgets_with_user = True

    def forget_user(self, user_id: Any) -> int:
        alias = self.db_for_write()
        return InboxEntry.objects.using(alias).filter(user_id=user_id).delete()[0]

    # Live delivery ----------------------------------------------------------
    def deliveries(self, message_id: Any, user_ids: Sequence[Any]) -> list[tuple[Any, int]]:
        """
        Read the users' entries of one message and their unread counts in one query.

        The count is a correlated subquery on the same index ``count()`` uses,
        so thousands of users cost one statement, not one each. The ids go in
        one ``IN`` list as long as the database takes that many parameters.
        """
        from django.db.models import OuterRef, Subquery
        from django.db.models.functions import Coalesce

        alias = self.db_for_read()
        connection = connections[alias]
        size = 30_000
        if connection.vendor == "sqlite":
            import sqlite3

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
        found: list[tuple[Any, int]] = []
        for chunk in _chunks(list(user_ids), size):
            rows = (
                entries.filter(message_id=message_id, user_id__in=chunk)
                .annotate(unread=Coalesce(Subquery(unread), 0))
                .values_list(*_COLUMNS, "unread")
            )
            found += [(_row_to_stored(row[:-1]), row[-1]) for row in rows]
        return found

    # Live delivery: a thread's moved row ----------------------------------
    def replaced(self, entries: Sequence[StoredMessage]) -> dict[Any, Any]:
        """Read the rows the entries folded: two queries per thread and 500 users."""
        alias = self.db_for_read()
        threads: dict[str | None, dict[Any, Any]] = {}
        for entry in entries:
            threads.setdefault(entry.thread, {})[entry.user_id] = entry.id
        found: dict[Any, Any] = {}
        for thread, newest in threads.items():
            for chunk in _chunks(list(newest), 500):
                rows = (
                    InboxEntry.objects.using(alias)
                    .filter(thread=thread, folded=True, user_id__in=chunk)
                    .filter(id__lt=max(newest[user] for user in chunk))
                    .values("user_id")
                    .annotate(old=Max("id"))
                    .values_list("user_id", "old")
                )
                olds = {old: newest[user] for user, old in rows if old < newest[user]}
                stored = InboxEntry.objects.using(alias).filter(id__in=list(olds))
                for row in stored.values_list(*_COLUMNS):
                    entry = _row_to_stored(row)
                    found[olds[entry.id]] = entry
        return found
