"""
The database backend's hand-written SQL, as functions of a connection.

The ORM builds most of the backend's queries. The fan-out and the request
path's statements are written here instead: ``INSERT ... SELECT``, ``UPDATE
... RETURNING`` and a data-changing ``WITH`` the ORM cannot express, or builds
several times slower than the database runs them. Each function returns SQL
(and its parameters) for one connection's vendor and runs nothing but
``run_prepared()``, so each can be read and tested alone; ``Statements``
keeps what is built once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeAlias, TypeVar

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Field, Model
from django.db.models.expressions import RawSQL

from ...message import CONTENT_FIELDS, STATE_FIELDS
from ...models import FoldedEntry, InboxEntry, Message, Mute, Thread

_S = TypeVar("_S")

#: A model field, whatever Python and database types it holds. A string: Django's
#: Field takes no type arguments at run time.
AnyField: TypeAlias = "Field[Any, Any]"

#: Columns read for a StoredMessage, in one query joining entry and content: the
#: entry's own fields, then the content's, named as the dataclass names them.
COLUMNS = STATE_FIELDS + tuple(f"message__{name}" for name in CONTENT_FIELDS)

#: Longest ``InboxEntry.senders``: room for three ids of up to 50 characters.
SENDERS_LENGTH = 160

#: Stand-ins for the user and the time in a prepared query, found again by position.
LIST_USER = -918_273_645
LIST_NOW = datetime(1901, 2, 3, 4, 5, 6, 789, tzinfo=UTC)


class Statements(dict[tuple[Hashable, ...], Any]):
    """
    SQL built once per database and shape, keyed by a tuple naming both.

    Building a query with the ORM costs several times what running it does,
    so the request path's statements are built on first use and kept.
    """

    def get_or_build(self, key: tuple[Hashable, ...], build: Callable[[], _S]) -> _S:
        statement: _S | None = self.get(key)
        if statement is None:
            statement = self[key] = build()
        return statement


def columns(connection: BaseDatabaseWrapper, model: type[Model]) -> dict[str, str]:
    """Return ``{field name or attname: quoted column}`` of ``model`` on ``connection``."""
    quote = connection.ops.quote_name
    names: dict[str, str] = {}
    for field in model._meta.concrete_fields:
        names[field.name] = names[field.attname] = quote(field.column)
    return names


def fields(model: type[Model], names: Iterable[str]) -> list[AnyField]:
    """Return the concrete fields of ``model`` named ``names``, in that order."""
    by_name = {}
    for field in model._meta.concrete_fields:
        by_name[field.name] = by_name[field.attname] = field
    return [by_name[name] for name in names]


def prepare(
    fields: Sequence[AnyField], values: Iterable[object], connection: BaseDatabaseWrapper
) -> list[Any]:
    """
    Return ``values`` as each field's ``get_db_prep_save()`` gives them, as ``save()`` does.

    None is NULL for every field of these two models, and most of a message's
    optional fields are None: they skip the field's conversion chain.
    """
    return [
        None if value is None else field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values, strict=True)
    ]


def has_update_returning(connection: BaseDatabaseWrapper) -> bool:
    """Whether the database updates and reads back the rows in one statement."""
    if connection.vendor == "postgresql":
        return True
    if connection.vendor == "sqlite":
        return sqlite3.sqlite_version_info >= (3, 35)
    return False  # MariaDB has RETURNING for INSERT and DELETE, not UPDATE


def folds_in_insert(connection: BaseDatabaseWrapper) -> bool:
    """Whether the database can fold a thread's old rows inside the insert (a DML ``WITH``)."""
    return connection.vendor == "postgresql"


#: The columns an inbox row keeps when it is folded into the thread's history.
FOLDED_FIELDS = (
    "id",
    "user",
    "message",
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


def takes_id_array(connection: BaseDatabaseWrapper) -> bool:
    """Whether ``ids_condition()`` passes a list of ids as one parameter on this database."""
    return connection.vendor in ("postgresql", "sqlite")


#: Column types whose ids ``ids_condition()`` sends to PostgreSQL as one string.
INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})
#: Column types whose ids PostgreSQL writes as text with no comma (``joined_ids()``).
JOINABLE_TYPES = INTEGER_TYPES | {"uuid"}


def ids_condition(
    connection: BaseDatabaseWrapper,
    model: type[Model],
    ids: Sequence[object],
    field_name: str | None = None,
) -> RawSQL:
    """
    Return ``model``'s primary key (or ``field_name``) among ``ids`` as one parameter.

    For ``takes_id_array()`` databases. PostgreSQL takes the ids as one array
    (``id = ANY(%s)``) and SQLite as one JSON array (``json_each``, which
    JSONField already requires): an ``IN`` list of thousands of placeholders
    cost more to parse than the insert took (and the ORM more to build than
    either), and SQLite would need a statement per 999 of them.
    """
    [condition] = ids_conditions(connection, ids, (model, field_name))
    return condition


def ids_conditions(
    connection: BaseDatabaseWrapper,
    ids: Sequence[object],
    *columns: tuple[type[Model], str | None],
) -> list[RawSQL]:
    """
    Return ``ids_condition()`` for each ``(model, field_name)`` of ``columns``.

    The columns must have one type (a user's id, an entry's user): the ids
    are converted once for all of them.
    """
    quote = connection.ops.quote_name
    names, fields = [], []
    for model, field_name in columns:
        field = model._meta.pk if field_name is None else model._meta.get_field(field_name)
        if not isinstance(field, Field):  # a relation's reverse side has no column of its own
            raise TypeError(f"{model.__name__}.{field_name} is not a concrete field")
        names.append(f"{quote(model._meta.db_table)}.{quote(field.column)}")
        fields.append(field)
    among, params = ids_among(connection, fields[0], ids)
    return [RawSQL(f"{name} {among}", params, output_field=BooleanField()) for name in names]


def ids_among(
    connection: BaseDatabaseWrapper, field: Field[Any, Any], ids: Sequence[object]
) -> tuple[str, tuple[Any, ...]]:
    """Return the right-hand side of ``ids_condition()`` for a column of ``field``'s type."""
    if connection.vendor == "postgresql":
        array, params = id_array(connection, field, ids)
        return f"= ANY({array})", params
    values = [field.get_db_prep_value(value, connection) for value in ids]
    return "IN (SELECT value FROM json_each(%s))", (json.dumps(values, cls=DjangoJSONEncoder),)


def id_array(
    connection: BaseDatabaseWrapper, field: Field[Any, Any], ids: Sequence[object]
) -> tuple[str, tuple[Any, ...]]:
    """
    Return a PostgreSQL array of ``ids``, of ``field``'s column type, as one parameter.

    Cast to the column's own type: PostgreSQL looks a long list up in a hash
    table only then. psycopg sends the smallest type that holds the values
    (smallint for small ids), and a list of another type is searched from its
    start for every row: 5,000 ids against 5,000 rows took 75 ms.
    """
    db_type = field.db_type(connection)
    if db_type in INTEGER_TYPES and all(type(value) is int for value in ids):
        # Integers go as one string that PostgreSQL splits while planning
        # (string_to_array() is immutable, so the list is still a constant
        # it can hash): psycopg wrote a list out through an object per id,
        # 10 MB for a batch of 100,000, where the string is 0.7 MB. Ints
        # need no field conversion, which cost a microsecond an id.
        return joined_array(db_type, ",".join(map(str, ids)))
    values = [field.get_db_prep_value(value, connection) for value in ids]
    return (f"%s::{db_type}[]" if db_type else "%s"), (values,)


def read_recipients(
    connection: BaseDatabaseWrapper, array: tuple[str, Sequence[Any]]
) -> tuple[tuple[str, list[Any]], tuple[str, list[Any]]]:
    """
    Return ``threaded_fan_out()``'s ``select`` and ``listed`` for users already read.

    PostgreSQL: ``array`` (``id_array()``, ``joined_array()``) holds their
    ids; the recipients are unnested from it and the thread's rows tested
    against it, and the users table is not read again.
    """
    sql, params = array
    quote = connection.ops.quote_name
    column = (
        f"{quote(InboxEntry._meta.db_table)}.{quote(InboxEntry._meta.get_field('user').column)}"
    )
    select = f"SELECT unnest({sql}) AS _pigeonhole_uid"
    return (select, list(params)), (f"{column} = ANY({sql})", list(params))


def joined_ids(select: tuple[str, Sequence[Any]], batch_size: int) -> tuple[str, list[Any]]:
    """
    Return the statement reading ``select``'s user ids as text, ``batch_size`` ids a row.

    PostgreSQL: each row is one string of ids joined by commas, which goes
    back as the one parameter of ``joined_array()``. Read as a row per id,
    100,000 ids cost the sending process 26 ms of CPU to turn into Python
    integers and 10 ms more to join again.
    """
    select_sql, params = select
    numbered = (
        f"SELECT _pigeonhole_uid, (row_number() OVER () - 1) / %s AS _pigeonhole_batch "
        f"FROM ({select_sql}) recipients"
    )
    sql = (
        f"SELECT string_agg(_pigeonhole_uid::text, ',') FROM ({numbered}) numbered "
        f"GROUP BY _pigeonhole_batch"
    )
    return sql, [batch_size, *params]


def joined_array(db_type: str, joined: str) -> tuple[str, tuple[Any, ...]]:
    """Return a PostgreSQL array of ``db_type`` from ids joined by commas (``joined_ids()``)."""
    return f"string_to_array(%s, ',')::{db_type}[]", (joined,)


def fan_out(
    connection: BaseDatabaseWrapper,
    message_id: int,
    created: datetime,
    expires: datetime | None,
    select: tuple[str, Sequence[Any]],
) -> tuple[str, list[Any]]:
    """Return the ``INSERT ... SELECT`` giving every user ``select`` reads an entry."""
    ops = connection.ops
    select_sql, select_params = select
    names = columns(connection, InboxEntry)
    sql = (
        f"INSERT INTO {ops.quote_name(InboxEntry._meta.db_table)} "
        f"({', '.join(names[name] for name in ('user', 'message', 'created', 'expires'))}) "
        f"SELECT recipients._pigeonhole_uid, %s, %s, %s FROM ({select_sql}) recipients"
    )
    params = [
        message_id,
        ops.adapt_datetimefield_value(created),
        ops.adapt_datetimefield_value(expires),
        *select_params,
    ]
    return sql, params


def threaded_fan_out(
    connection: BaseDatabaseWrapper,
    content: Message,
    created: datetime,
    select: tuple[str, Sequence[Any]],
    folds: bool | None = None,
    listed: tuple[str, Sequence[Any]] | None = None,
) -> list[tuple[str, list[Any]]]:
    """
    Return the statements giving a threaded message's recipients new rows; the last inserts them.

    Those who muted the thread are skipped. Each recipient's current row of
    the thread, if any, moves as it is to ``FoldedEntry`` (the thread's
    history), and the new entry takes over its saved state, its count unless
    the row was read since, and its senders, with this message's sender
    moved to the front. A deleted row writes no index entry: folding by
    marking the row wrote a new version of it to every index of the table.

    PostgreSQL does it in one statement after the lock (``folds``, by default
    ``folds_in_insert()``): a ``DELETE ... RETURNING`` in a ``WITH`` feeds both
    the history's insert and the new rows. Elsewhere three statements copy the
    rows, delete them and insert the new ones, which read the history's newest
    entry of their thread back: a thread's history goes with its row, so the
    newest one is the row just moved.

    A thread's rows are those of its messages: they are found through the
    ``(message, user)`` index, for the thread's messages (``Message.thread``
    is indexed). No unique index keeps one row per user and thread: the
    statements start by locking the thread's row of ``Thread``
    (``thread_lock()``), so sends into one thread run one after the other and
    each sees the rows the one before committed, or, at a stricter isolation
    level on PostgreSQL, fails.

    The thread's rows are tested against ``listed``, a condition on the
    inbox table's user column that takes the recipients' ids as one
    constant (``ids_condition()``, ``read_recipients()``), which PostgreSQL
    looks rows up in with a hash table, and no plan can make a loop over
    the recipients: joined with the recipients' query, on tables without
    statistics yet, PostgreSQL guessed one row for the thread and read the
    recipients again for each of its rows (a list of 10,000 took 5
    seconds). Without ``listed`` (MariaDB, a QuerySet on SQLite, a list
    when the default user manager filters) they are joined with ``select``. Either way it is one
    pass over the thread's rows; looking each recipient's row up instead
    cost a probe of the ``(message, user)`` index per message of the
    thread, or a read of the recipient's inbox.
    """
    if folds is None:
        folds = folds_in_insert(connection)
    ops = connection.ops
    table = ops.quote_name(InboxEntry._meta.db_table)
    history = ops.quote_name(FoldedEntry._meta.db_table)
    mutes = ops.quote_name(Mute._meta.db_table)
    select_sql, select_params = select

    quoted = {
        InboxEntry: columns(connection, InboxEntry),
        Mute: columns(connection, Mute),
        FoldedEntry: columns(connection, FoldedEntry),
        Message: columns(connection, Message),
    }

    def column(name: str, model: type[Model] = InboxEntry) -> str:
        return quoted[model][name]

    def concat(*parts: str) -> str:
        if connection.vendor == "mysql":
            return f"CONCAT({', '.join(parts)})"
        return " || ".join(parts)

    names: tuple[str, ...] = ("user", "message", "created", "expires", "thread")
    names += ("count", "senders", "saved_at")
    kept = ", ".join(column(name) for name in FOLDED_FIELDS)
    old_senders = f"old.{column('senders')}"
    sender = content.from_user_id
    if sender is None:
        senders, sender_params = f"COALESCE({old_senders}, %s)", [""]
    else:
        previous = f"REPLACE(COALESCE(NULLIF({old_senders}, %s), %s), %s, %s)"
        senders = f"SUBSTR({concat('%s', previous)}, 1, {SENDERS_LENGTH})"
        sender_params = [f",{sender}", "", ",", f",{sender},", ","]
    uid = "recipients._pigeonhole_uid"
    unmuted = (
        f"NOT IN (SELECT {column('user', Mute)} FROM {mutes} WHERE {column('thread', Mute)} = %s)"
    )
    values = [
        content.pk,
        ops.adapt_datetimefield_value(created),
        ops.adapt_datetimefield_value(content.expires),
    ]
    thread = content.thread
    messages = (
        f"SELECT {column('id', Message)} FROM {ops.quote_name(Message._meta.db_table)} "
        f"WHERE {column('thread', Message)} = %s"
    )
    select_all = (
        f"SELECT {uid}, %s, %s, %s, %s, "
        f"CASE WHEN old.{column('id')} IS NULL OR old.{column('read_at')} IS NOT NULL "
        f"THEN 1 ELSE old.{column('count')} + 1 END, "
        f"{senders}, old.{column('saved_at')} "
        f"FROM ({select_sql}) recipients "
    )
    insert = f"INSERT INTO {table} ({', '.join(column(name) for name in names)}) "
    # PostgreSQL reads the thread's messages first, into an array: as an
    # IN (subquery) its estimate (one message, from statistics taken when
    # the thread had one) made it read the whole table once per message.
    among = f"= ANY(ARRAY({messages}))" if connection.vendor == "postgresql" else f"IN ({messages})"
    # The recipients are read twice on PostgreSQL, to find the rows and to
    # insert the new ones: named once in a WITH, they were computed once but
    # planned without statistics, and the send took a third longer.
    if listed is None:
        recipient, recipient_params = (
            f"{table}.{column('user')} IN (SELECT {uid} FROM ({select_sql}) recipients)",
            select_params,
        )
    else:
        recipient, recipient_params = listed
    rows = (
        f"{table}.{column('message')} {among} AND {table}.{column('thread')} = %s "
        f"AND {recipient} AND {table}.{column('user')} {unmuted}"
    )
    row_params = [thread, thread, *recipient_params, thread]
    lock = [thread_lock(connection, thread, content.pk)]
    if folds:
        returning = ", ".join(f"{table}.{column(name)}" for name in FOLDED_FIELDS)
        sql = (
            f"WITH old AS (DELETE FROM {table} WHERE {rows} RETURNING {returning}), "
            f"folded AS (INSERT INTO {history} ({kept}) SELECT {kept} FROM old) "
            f"{insert}{select_all}"
            f"LEFT JOIN old ON old.{column('user')} = {uid} WHERE {uid} {unmuted}"
        )
        params = [*row_params, *values, thread, *sender_params, *select_params, thread]
        return [*lock, (sql, params)]
    user, history_id = column("user", FoldedEntry), column("id", FoldedEntry)
    newest = (
        f"SELECT MAX(f.{history_id}) FROM {history} f "
        f"WHERE f.{user} = {uid} AND f.{column('thread', FoldedEntry)} = %s"
    )
    copy = f"INSERT INTO {history} ({kept}) SELECT {kept} FROM {table} WHERE {rows}"
    delete = f"DELETE FROM {table} WHERE {rows}"
    sql = (
        f"{insert}{select_all}"
        f"LEFT JOIN {history} old ON old.{user} = {uid} AND old.{history_id} = ({newest}) "
        f"WHERE {uid} {unmuted}"
    )
    params = [*values, thread, *sender_params, *select_params, thread, thread]
    return [*lock, (copy, list(row_params)), (delete, list(row_params)), (sql, params)]


def thread_lock(
    connection: BaseDatabaseWrapper, thread: str, message_id: int
) -> tuple[str, list[Any]]:
    """
    Return the statement that makes writers of ``thread``'s rows take turns.

    It upserts the thread's row of ``Thread``, setting the newest message to
    ``message_id``, and so holds that row's lock to the end of the
    transaction: nothing unique keeps one inbox row per user and thread, so
    two sends into a thread at once would each see the row the other is
    about to replace, and both keep it. The second waits for the first's
    commit; under ``READ COMMITTED`` the statements after the lock see the
    first's rows and fold them. Under ``REPEATABLE READ`` or ``SERIALIZABLE``,
    PostgreSQL refuses to update a row another transaction changed after the
    snapshot began (or to skip a conflict with a row it cannot see) and fails
    the send with a serialization failure, where an advisory lock would have
    let it miss the first's rows. Sends into other threads lock other rows.
    """
    ops = connection.ops
    table = ops.quote_name(Thread._meta.db_table)
    key = ops.quote_name(Thread._meta.pk.column)
    newest = ops.quote_name(Thread._meta.get_field("last_message").column)
    insert = f"INSERT INTO {table} ({key}, {newest}) VALUES (%s, %s) "
    if connection.vendor == "mysql":
        upsert = f"ON DUPLICATE KEY UPDATE {newest} = VALUES({newest})"
    else:
        upsert = f"ON CONFLICT ({key}) DO UPDATE SET {newest} = EXCLUDED.{newest}"
    return insert + upsert, [thread, message_id]


def insert(
    connection: BaseDatabaseWrapper, model: type[Model], names: Iterable[str]
) -> tuple[str, list[AnyField], bool]:
    """
    Return a one-row insert into ``model``'s ``names``, its fields, and whether it returns the id.

    Pass the values through ``prepare()`` with those fields.
    """
    ops = connection.ops
    targets = fields(model, names)
    sql = (
        f"INSERT INTO {ops.quote_name(model._meta.db_table)} "
        f"({', '.join(ops.quote_name(field.column) for field in targets)}) "
        f"VALUES ({', '.join(['%s'] * len(targets))})"
    )
    returning = connection.features.can_return_columns_from_insert
    if returning:
        sql += f" RETURNING {ops.quote_name(model._meta.pk.column)}"
    return sql, targets, returning


def insert_both(
    connection: BaseDatabaseWrapper, content: Iterable[str], entry: Iterable[str]
) -> tuple[str, list[AnyField], list[AnyField]]:
    """
    Return the insert of a content row and its one entry, and the fields of each.

    An ``INSERT ... RETURNING`` inside a ``WITH``, for PostgreSQL only (SQLite
    and MariaDB allow no data-changing statement in a ``WITH``): the request
    path's ``add()`` is one round trip. It returns the two new ids.
    """
    quote = connection.ops.quote_name
    content_fields = fields(Message, content)
    targets = fields(InboxEntry, entry)
    names = columns(connection, InboxEntry)
    pk = quote(Message._meta.pk.column)
    sql = (
        f"WITH m AS (INSERT INTO {quote(Message._meta.db_table)} "
        f"({', '.join(quote(field.column) for field in content_fields)}) "
        f"VALUES ({', '.join(['%s'] * len(content_fields))}) "
        f"RETURNING {pk}) "
        f"INSERT INTO {quote(InboxEntry._meta.db_table)} "
        f"({', '.join(quote(field.column) for field in targets)}, {names['message']}) "
        f"SELECT {', '.join(['%s'] * len(targets))}, m.{pk} "
        f"FROM m RETURNING {names['message']}, {names['id']}"
    )
    return sql, content_fields, targets


def set_column(
    connection: BaseDatabaseWrapper, column: str, stamps: bool, size: int, returning: bool
) -> str:
    """
    Return the ``UPDATE`` that stamps (or clears) ``column`` on ``size`` ids of a user.

    Parameters: the value, the user, the ids, now. Only visible entries in
    the other state match, so the row count is the number changed; with
    ``returning`` it reads back their ids.
    """
    names = columns(connection, InboxEntry)
    target, expires = names[column], names["expires"]
    sql = (
        f"UPDATE {connection.ops.quote_name(InboxEntry._meta.db_table)} "
        f"SET {target} = %s WHERE {names['user']} = %s AND {names['id']} IN "
        f"({', '.join(['%s'] * size)}) AND {target} IS {'' if stamps else 'NOT '}NULL "
        f"AND ({expires} IS NULL OR {expires} > %s)"
    )
    if returning:
        sql += f" RETURNING {names['id']}"
    return sql


def update_returning(connection: BaseDatabaseWrapper, column: str, where_sql: str) -> str:
    """Return an ``UPDATE`` setting ``column`` where ``where_sql`` holds, returning the ids."""
    names = columns(connection, InboxEntry)
    return (
        f"UPDATE {connection.ops.quote_name(InboxEntry._meta.db_table)} "
        f"SET {names[column]} = %s WHERE {where_sql} RETURNING {names['id']}"
    )


def claim(connection: BaseDatabaseWrapper) -> str:
    """
    Return the ``UPDATE ... RETURNING`` that marks a user's newest unread entries read.

    Parameters: the time, the user, the time again, the limit. It returns
    ``COLUMNS`` of each entry claimed. PostgreSQL joins the content with
    ``FROM``; SQLite 3.35+, whose ``RETURNING`` may not name a joined table,
    reads each content column from a subquery on its primary key.
    """
    quote = connection.ops.quote_name
    entry, content = columns(connection, InboxEntry), columns(connection, Message)
    table = quote(InboxEntry._meta.db_table)
    newest = (
        f"SELECT {entry['id']} FROM {table} WHERE {entry['user']} = %s "
        f"AND {entry['read_at']} IS NULL AND {entry['archived_at']} IS NULL "
        f"AND ({entry['expires']} IS NULL OR {entry['expires']} > %s) "
        f"ORDER BY {entry['id']} DESC LIMIT %s"
    )
    # SQLite's RETURNING knows the updated table by its name only, not an alias.
    postgres = connection.vendor == "postgresql"
    e = "e" if postgres else table
    # Re-checked on the row itself: a concurrent claim that got there first wins it.
    where = f"{e}.{entry['id']} IN ({newest}) AND {e}.{entry['read_at']} IS NULL"
    returning = ", ".join(f"{e}.{entry[name]}" for name in STATE_FIELDS)
    if postgres:
        joined = ", ".join(f"m.{content[name]}" for name in CONTENT_FIELDS)
        return (
            f"UPDATE {table} AS e SET {entry['read_at']} = %s "
            f"FROM {quote(Message._meta.db_table)} AS m "
            f"WHERE m.{content['id']} = e.{entry['message']} AND {where} "
            f"RETURNING {returning}, {joined}"
        )
    joined = ", ".join(
        f"(SELECT m.{content[name]} FROM {quote(Message._meta.db_table)} AS m "
        f"WHERE m.{content['id']} = {e}.{entry['message']})"
        for name in CONTENT_FIELDS
    )
    return (
        f"UPDATE {table} SET {entry['read_at']} = %s WHERE {where} RETURNING {returning}, {joined}"
    )


def converters(connection: BaseDatabaseWrapper) -> tuple[Any, list[Any]]:
    """Return the compiler and converters that turn raw ``COLUMNS`` rows into values."""
    qs = InboxEntry.objects.using(connection.alias).values_list(*COLUMNS)
    compiler = qs.query.get_compiler(using=connection.alias)
    compiler.as_sql()
    return compiler, compiler.get_converters([col for col, _, _ in compiler.select])


class Prepared(NamedTuple):
    """A query compiled once, and where its user and time go among the parameters."""

    sql: str
    params: list[Any]
    user_at: int
    now_at: int
    compiler: Any
    converters: Any


def prepare_query(connection: BaseDatabaseWrapper, build: Callable[[Any], Any]) -> Prepared:
    """
    Compile ``build(visible entries of a user)`` with stand-in values, noting their positions.

    ``run_prepared()`` puts the real user and time there and only runs it:
    building and compiling a QuerySet costs more than running these indexed
    queries. The stand-ins must each appear once among the parameters.
    """
    alias = connection.alias
    stand_in = LIST_NOW if settings.USE_TZ else LIST_NOW.replace(tzinfo=None)
    qs = build(InboxEntry.objects.using(alias).filter(user_id=LIST_USER).visible(stand_in))
    compiler = qs.query.get_compiler(using=alias)
    sql, params = compiler.as_sql()
    now = connection.ops.adapt_datetimefield_value(stand_in)
    users = [i for i, p in enumerate(params) if p == LIST_USER]
    nows = [i for i, p in enumerate(params) if p == now]
    if len(users) != 1 or len(nows) != 1:
        raise RuntimeError(f"Cannot prepare the query: {sql} {params}")
    found = compiler.get_converters([col for col, _, _ in compiler.select])
    return Prepared(sql, list(params), users[0], nows[0], compiler, found)


def run_prepared(
    connection: BaseDatabaseWrapper, prepared: Prepared, user_id: Any, now: datetime
) -> list[Any]:
    """Run a prepared query for ``user_id`` at ``now``; return its rows, converted."""
    return run_prepared_for(connection, prepared, [user_id], now)


def run_prepared_for(
    connection: BaseDatabaseWrapper, prepared: Prepared, user_ids: Sequence[Any], now: datetime
) -> list[Any]:
    """
    Run a prepared query for each of ``user_ids`` at ``now``, in one statement; return all rows.

    Each user's query stays as it is (its own ``LIMIT`` on its own index
    range), wrapped as a derived table, and the wrappers are joined with
    ``UNION ALL``: one round trip for many users, in no particular order.
    """
    stamp = connection.ops.adapt_datetimefield_value(now)
    params: list[Any] = []
    for user_id in user_ids:
        own = list(prepared.params)
        own[prepared.user_at] = user_id
        own[prepared.now_at] = stamp
        params += own
    if len(user_ids) == 1:
        statement = prepared.sql
    else:
        quote = connection.ops.quote_name
        statement = " UNION ALL ".join(
            f"SELECT * FROM ({prepared.sql}) {quote(f'u{n}')}" for n in range(len(user_ids))
        )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows: list[Any] = cursor.fetchall()
    if prepared.converters:
        rows = list(prepared.compiler.apply_converters(rows, prepared.converters))
    return rows
