"""The database backend's hand-written SQL, run directly on whichever database the run uses."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pigeonhole.backends.base import Recipients
from pigeonhole.backends.db import DatabaseBackend, sql
from pigeonhole.models import FoldedEntry, InboxEntry, Message, Mute

from .contract import new, texts

pytestmark = pytest.mark.django_db

needs_returning = pytest.mark.skipif(
    not sql.has_update_returning(connection), reason="no UPDATE ... RETURNING on this database"
)


def stamp(when):
    return connection.ops.adapt_datetimefield_value(when)


def recipients(users):
    """The ``(sql, params)`` of a select of ``users``' ids, as the fan-out takes it."""
    select = (
        get_user_model()
        .objects.filter(pk__in=[u.pk for u in users])
        .annotate(_pigeonhole_uid=F("pk"))
        .values_list("_pigeonhole_uid")
    )
    return select.query.get_compiler(using=connection.alias).as_sql()


def content(text, **fields):
    """A saved content row, with no entries yet."""
    row = DatabaseBackend._new_content(new(text, **fields), timezone.now())
    row.save()
    return row


def run(statement, params):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall() if cursor.description else None
        return cursor.rowcount, rows  # SQLite counts returned rows once they are read


def visible_ids(user_id):
    return set(InboxEntry.objects.filter(user_id=user_id).visible().values_list("id", flat=True))


@needs_returning
def test_the_claim_returns_exactly_the_unread_unfolded_visible_rows_of_one_user(uid, users):
    backend = DatabaseBackend()
    unread = [backend.add(new(f"u{i}"), uid) for i in range(2)]
    read, archived, gone = (backend.add(new(text), uid) for text in ("r", "a", "g"))
    backend.mark_read(uid, [read.id])
    backend.archive(uid, [archived.id])
    backend.expire(uid, [gone.id])
    backend.add(new("folded", thread="t"), uid)
    head = backend.add(new("head", thread="t"), uid)
    backend.add(new("theirs"), users[1].pk)
    now = timezone.now()
    _, rows = run(sql.claim(connection), (stamp(now), uid, stamp(now), 100))
    assert {row[0] for row in rows} == {unread[0].id, unread[1].id, head.id}
    assert {len(row) for row in rows} == {len(sql.COLUMNS)}
    by_name = dict(zip(sql.COLUMNS, rows[0], strict=True))
    assert by_name["user_id"] == uid and by_name["message__message"] in {"u0", "u1", "head"}
    assert backend.count(uid) == 0 and backend.count(users[1].pk) == 1
    _, again = run(sql.claim(connection), (stamp(now), uid, stamp(now), 100))
    assert again == []


@needs_returning
def test_the_claim_takes_the_newest_up_to_its_limit(uid):
    backend = DatabaseBackend()
    entries = [backend.add(new(f"m{i}"), uid) for i in range(3)]
    now = timezone.now()
    _, rows = run(sql.claim(connection), (stamp(now), uid, stamp(now), 2))
    assert {row[0] for row in rows} == {entries[2].id, entries[1].id}
    assert texts(backend.list(uid)) == ["m0"]


def test_the_set_statement_changes_only_the_users_visible_rows_in_the_other_state(uid, users):
    backend = DatabaseBackend()
    unread, read, gone = (backend.add(new(text), uid) for text in ("u", "r", "g"))
    backend.mark_read(uid, [read.id])
    backend.expire(uid, [gone.id])
    theirs = backend.add(new("theirs"), users[1].pk)
    ids = [unread.id, read.id, gone.id, theirs.id]
    now = stamp(timezone.now())
    statement = sql.set_column(connection, "read_at", True, len(ids), returning=False)
    assert run(statement, (now, uid, *ids, now))[0] == 1
    assert InboxEntry.objects.get(pk=unread.id).read_at is not None
    assert InboxEntry.objects.get(pk=theirs.id).read_at is None

    returning = sql.has_update_returning(connection)
    statement = sql.set_column(connection, "read_at", False, 2, returning=returning)
    count, rows = run(statement, (None, uid, unread.id, theirs.id, now))
    assert count == 1 and (rows is None) == (not returning)
    if returning:
        assert rows == [(unread.id,)]
    assert backend.count(uid) == 1


def test_a_prepared_listing_takes_the_user_and_time_where_the_stand_ins_were(uid, users):
    backend = DatabaseBackend()
    kept = backend.add(new("kept"), uid)
    soon = backend.add(new("soon", expires=timezone.now() + timedelta(hours=1)), uid)
    backend.add(new("theirs"), users[1].pk)
    prepared = sql.prepare_query(
        connection, lambda qs: qs.order_by("-id").values_list(*sql.COLUMNS)[:10]
    )
    assert prepared.user_at != prepared.now_at
    assert prepared.params[prepared.user_at] == sql.LIST_USER
    assert prepared.params[prepared.now_at] == stamp(sql.LIST_NOW)

    rows = sql.run_prepared(connection, prepared, uid, timezone.now())
    assert [row[0] for row in rows] == [soon.id, kept.id]
    assert rows[0][sql.COLUMNS.index("created")] == soon.created  # converted to a datetime
    later = timezone.now() + timedelta(hours=2)
    assert [row[0] for row in sql.run_prepared(connection, prepared, uid, later)] == [kept.id]
    assert prepared.params[prepared.user_at] == sql.LIST_USER  # the cached one is untouched


def test_a_query_naming_a_stand_in_twice_is_refused():
    with pytest.raises(RuntimeError, match="Cannot prepare the query"):
        sql.prepare_query(connection, lambda qs: qs.filter(message__from_user_id=sql.LIST_USER))


def test_the_fan_out_gives_each_selected_user_one_entry(users):
    row = content("to two")
    now = timezone.now()
    statement, params = sql.fan_out(connection, row.pk, now, None, recipients(users[:2]))
    assert run(statement, params)[0] == 2
    entries = InboxEntry.objects.filter(message=row)
    assert sorted(entries.values_list("user_id", flat=True)) == sorted(u.pk for u in users[:2])


def test_the_threaded_fan_out_takes_over_each_row_and_skips_who_muted(users):
    backend = DatabaseBackend()
    backend.send(new("first", thread="t"), Recipients(ids=[u.pk for u in users]))
    Mute.objects.create(user=users[2], thread="t")
    row = content("second", thread="t", from_user_id=users[1].pk)
    statements = sql.threaded_fan_out(connection, row, timezone.now(), recipients(users))
    assert [run(statement, params)[0] for statement, params in statements][-1] == 2
    [head] = backend.list(users[0].pk)
    assert (str(head), head.count, head.senders) == ("second", 2, [users[1].pk])
    assert texts(backend.list(users[2].pk)) == ["first"]
    assert len(visible_ids(users[0].pk)) == 1
    folded = FoldedEntry.objects.values_list("user_id", "message__message", "thread")
    assert sorted(folded) == sorted((u.pk, "first", "t") for u in users[:2])


def test_a_thread_message_moves_the_replaced_row_to_the_history_table(uid):
    """The row leaves the inbox table as it was, keeping its id and its state."""
    backend = DatabaseBackend()
    first = backend.add(new("first", thread="t"), uid)
    backend.mark_read(uid, [first.id])
    second = backend.add(new("second", thread="t"), uid)
    assert list(InboxEntry.objects.filter(user_id=uid).values_list("id", flat=True)) == [second.id]
    [folded] = FoldedEntry.objects.filter(user_id=uid)
    assert (folded.id, folded.thread, folded.is_read, folded.message_id) == (
        first.id,
        "t",
        True,
        first.message_id,
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's statistics")
def test_a_threaded_send_updates_no_row_of_the_inbox_table(users):
    """
    Folding deletes the replaced row: an update would write a new version of
    it to every index of the table, which doubled a threaded send's work.
    """
    backend = DatabaseBackend()
    ids = Recipients(ids=[u.pk for u in users])
    backend.send(new("first", thread="t"), ids)

    def changes():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables WHERE relname = %s",
                [InboxEntry._meta.db_table],
            )
            return cursor.fetchone()

    updated, deleted = changes()
    backend.send(new("second", thread="t"), ids)
    assert changes() == (updated, deleted + len(users))


def test_the_ids_condition_finds_exactly_those_users(users):
    if not sql.takes_id_array(connection):
        pytest.skip("this database takes ids as an IN list")
    model = get_user_model()
    wanted = [users[0].pk, users[2].pk]
    found = model.objects.filter(sql.ids_condition(connection, model, wanted))
    assert sorted(found.values_list("pk", flat=True)) == sorted(wanted)


def test_the_one_row_insert_returns_its_id(uid):
    statement, fields, returning = sql.insert(connection, Mute, ["user", "thread", "created"])
    params = sql.prepare(fields, [uid, "t", timezone.now()], connection)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        if returning:
            pk = cursor.fetchone()[0]
        else:
            pk = connection.ops.last_insert_id(cursor, Mute._meta.db_table, "id")
    assert Mute.objects.get(pk=pk).thread == "t"


def test_the_insert_of_both_rows_returns_both_ids(uid):
    if connection.vendor != "postgresql":
        pytest.skip("a data-changing WITH is PostgreSQL's")
    row = DatabaseBackend._new_content(new("both"), timezone.now())
    fields = [field for field in Message._meta.concrete_fields if not field.primary_key]
    values = {field.name: getattr(row, field.attname) for field in fields}
    entry = {"user": uid, "created": timezone.now(), "expires": None}
    statement, fields, targets = sql.insert_both(connection, values, entry)
    params = sql.prepare([*fields, *targets], [*values.values(), *entry.values()], connection)
    _, [(message_id, entry_id)] = run(statement, params)
    assert InboxEntry.objects.get(pk=entry_id).message_id == message_id
    assert Message.objects.get(pk=message_id).message == "both"


def test_statements_are_built_once():
    statements = sql.Statements()
    built = []
    for _ in range(2):
        assert statements.get_or_build(("k",), lambda: built.append(1) or "SQL") == "SQL"
    assert built == [1] and dict(statements) == {("k",): "SQL"}


# The plans: each statement reads the index meant for it ------------------------------------

needs_partial_indexes = pytest.mark.skipif(
    not connection.features.supports_partial_indexes,
    reason="MariaDB has no partial indexes: its full ones serve every statement",
)


def plan(statement, params=()):
    """
    Return the database's plan for ``statement`` as one string.

    PostgreSQL is told to avoid sequential scans, which it rightly prefers on
    tables this small: the plan then names the index it would use at scale.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {statement}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def index_definition(name):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [name])
        else:
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [name])
        return cursor.fetchone()[0]


def full_scans(plan_text, table):
    """The lines of a plan that read the whole of ``table``, as PostgreSQL or SQLite put it."""
    return [
        line
        for line in plan_text.splitlines()
        if f"Seq Scan on {table}" in line
        or (f"SCAN {table}" in line and "COVERING INDEX" not in line and "USING" not in line)
    ]


@pytest.mark.skipif(connection.vendor == "mysql", reason="the index is not partial on MariaDB")
def test_no_unique_index_holds_a_threads_rows():
    """
    Every row of every send wrote to the (thread, user) index, a third of a
    threaded send's time: one row per user and thread is the send's to keep.
    """
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, InboxEntry._meta.db_table)
    assert "pigeonhole_entry_thread_row" not in constraints
    assert constraints["pigeonhole_entry_message_idx"]["columns"] == ["message_id", "user_id"]


@needs_partial_indexes
def test_the_unseen_count_reads_the_unread_index(uid):
    backend = DatabaseBackend()
    # Read entries too, so the partial index is the smaller one, as on a site.
    backend.mark_read(uid, [backend.add(new(f"read {i}"), uid).id for i in range(20)])
    backend.add(new("unseen"), uid)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {InboxEntry._meta.db_table}")
    qs = InboxEntry.objects.filter(
        user_id=uid, seen_at__isnull=True, read_at__isnull=True, archived_at__isnull=True
    ).visible()
    statement, params = qs.values("id").query.sql_with_params()
    assert "pigeonhole_entry_unread_idx" in plan(statement, params)


@needs_partial_indexes
def test_a_threaded_send_finds_the_rows_of_its_thread_through_its_messages(users):
    backend = DatabaseBackend()
    everyone = Recipients(ids=[u.pk for u in users])
    backend.send(new("first", thread="t"), everyone)
    for n in range(40):  # the inboxes hold more than the thread, as on a site
        backend.send(new(f"elsewhere {n}", thread=f"u{n % 4}" if n % 2 else None), everyone)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {InboxEntry._meta.db_table}")
    row = content("second", thread="t")
    # The first statement after the lock finds the rows: the whole send on
    # PostgreSQL, the copy elsewhere.
    statements = sql.threaded_fan_out(connection, row, timezone.now(), recipients(users))
    [(statement, params), *_] = statements[1:]
    found = plan(statement, params)
    assert "pigeonhole_entry_message_idx" in found, found
    assert not full_scans(found, InboxEntry._meta.db_table), found


def test_a_threaded_send_locks_its_threads_row_first(users):
    """Nothing unique keeps one row per user and thread: sends into one thread take turns."""
    from pigeonhole.models import Thread

    row = content("second", thread="t")
    statements = sql.threaded_fan_out(connection, row, timezone.now(), recipients(users))
    assert statements[0] == sql.thread_lock(connection, "t", row.pk)
    assert Thread._meta.db_table in statements[0][0]
    with connection.cursor() as cursor:
        for statement, params in statements:
            cursor.execute(statement, params)
    assert list(Thread.objects.values_list("thread", "last_message")) == [("t", row.pk)]


@pytest.mark.skipif(connection.vendor == "mysql", reason="MariaDB's plans read differently")
def test_a_threads_history_is_read_by_its_key(uid):
    backend = DatabaseBackend()
    for text in ("m0", "m1"):
        row = backend.add(new(text, thread="t"), uid)
    with CaptureQueriesContext(connection) as captured:
        assert texts(backend.thread_messages(uid, row.id)) == ["m0", "m1"]
    table = FoldedEntry._meta.db_table
    [history] = [q["sql"] for q in captured.captured_queries if table in q["sql"]]
    assert not full_scans(plan(history), table)


@pytest.mark.skipif(connection.vendor == "mysql", reason="MariaDB's plans read differently")
def test_no_query_on_the_history_reads_a_whole_table(users):
    """
    The history's one index is its key, (user, thread, id), and the thread's
    rows are found through its messages: deleting a message, purging, the
    live "replaced row" and an export all find history through them.
    """
    from pigeonhole.models import Message as Content

    backend = DatabaseBackend()
    ids = Recipients(ids=[u.pk for u in users])
    sent = [backend.send(new(f"m{n}", thread="t"), ids) for n in range(3)]
    backend.send(new("plain"), ids)
    rows = backend.list(users[0].pk)
    backend.mark_read(users[0].pk, [row.id for row in rows])
    table, entries = FoldedEntry._meta.db_table, InboxEntry._meta.db_table
    with CaptureQueriesContext(connection) as captured:
        backend.purge(read_before=timezone.now() + timedelta(days=1), dry_run=True)
        backend.replaced(rows)
        backend.export_entries(users[0].pk)
        InboxEntry.objects.filter(user_id=users[1].pk, thread="t").history().delete()
        backend.delete(users[2].pk, [e.id for e in backend.list(users[2].pk)], allow_unread=True)
        Content.objects.filter(pk=sent[1].pk).delete()
        backend.purge(read_before=timezone.now() + timedelta(days=1))
    queries = [q["sql"] for q in captured.captured_queries if table in q["sql"]]
    assert len(queries) >= 5
    for query in queries:
        found = plan(query)
        assert not full_scans(found, table), (query, found)
        assert not full_scans(found, entries), (query, found)


def explained(statement, analyze=False):
    """Return PostgreSQL's plan of ``statement`` as JSON, run and undone if ``analyze``."""
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN ({options}) {statement}")
        [[[found]]] = cursor.fetchall()
        transaction.set_rollback(True)
    return found["Plan"]


def nodes(node):
    """A plan's node and every node below it."""
    yield node
    for child in node.get("Plans", ()):
        yield from nodes(child)


def the_delete(plan):
    """The part of a threaded send's plan that finds and deletes the rows it replaces."""
    [delete] = [node for node in nodes(plan) if node.get("Operation") == "Delete"]
    return delete


def blocks_finding_rows(statement):
    """Return the blocks a threaded send's statement read to find the rows it replaces."""
    delete = the_delete(explained(statement, analyze=True))
    return delete["Shared Hit Blocks"] + delete["Shared Read Blocks"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL folds inside the insert")
def test_a_list_sent_into_a_long_thread_reads_its_rows_once_not_per_message(django_user_model):
    """
    A send to a list of users finds their rows of the thread in one pass
    over the thread's rows, joined with the recipients. Looking each
    recipient's row up instead cost a probe per message of the thread (a
    list of 100,000 into a thread of 100 messages: 10,000,000 probes), or a
    read of each recipient's inbox.
    """
    django_user_model.objects.bulk_create(
        django_user_model(username=f"reader{n}") for n in range(100)
    )
    people = list(django_user_model.objects.values_list("pk", flat=True))
    backend = DatabaseBackend()
    everyone = Recipients(ids=people)
    for n in range(40):  # the inboxes hold more than the thread, as on a site
        backend.send(new(f"elsewhere {n}"), everyone)

    def fold_reads(thread, between):
        backend.send(new("first", thread=thread), everyone)
        for n in range(between):  # the thread grows, with one reader in it
            backend.send(new(f"reply {n}", thread=thread), Recipients(ids=people[:1]))
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        with CaptureQueriesContext(connection) as captured:
            backend.send(new("last", thread=thread), everyone)
        [fold] = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("WITH old")]
        assert all(texts(backend.list(pk))[:1] == ["last"] for pk in people[::10])
        return blocks_finding_rows(fold)

    short, long = fold_reads("short", 0), fold_reads("long", 60)
    # Looking each recipient's row up read a page per recipient and message of
    # the thread, or per row of their inbox (40 here): 4,545 and 4,847 blocks.
    assert max(short, long) < 10 * len(people), (short, long)


def rows_handled(plan):
    """
    Return the rows a plan's nodes produced and threw away, each node's times
    the number of times it ran: a join that reads one side again for each
    row of the other shows as the product of the two.
    """
    own = plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)
    own += plan.get("Rows Removed by Join Filter", 0)
    return own * plan["Actual Loops"] + sum(map(rows_handled, plan.get("Plans", ())))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL folds inside the insert")
@pytest.mark.parametrize("form", ["list", "query"])
def test_a_send_into_a_thread_does_work_in_proportion_without_statistics(django_user_model, form):
    """
    On tables with no statistics yet (a new site, a restored backup),
    PostgreSQL guessed a thread had one row and joined the recipients to
    the thread's rows by reading every recipient again for each row: a send
    to 10,000 into a thread took 3 to 5 seconds, 100,000 would take many
    minutes. The thread's rows are tested against the recipients' ids as
    one constant instead, which no plan can turn into a loop over them.
    """
    django_user_model.objects.bulk_create(
        django_user_model(username=f"reader{n}") for n in range(500)
    )
    people = list(django_user_model.objects.values_list("pk", flat=True))
    backend = DatabaseBackend()
    if form == "list":
        everyone = Recipients(ids=people)
    else:
        everyone = Recipients(
            queryset=django_user_model.objects.filter(username__startswith="reader", is_active=True)
        )
    backend.send(new("first", thread="t"), everyone)
    with CaptureQueriesContext(connection) as captured:
        backend.send(new("second", thread="t"), everyone)
    [fold] = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("WITH old")]
    assert all(texts(backend.list(pk)) == ["second"] for pk in people[::50])
    # Whatever the estimates, nothing joins the thread's rows with anything.
    joins = [node["Node Type"] for node in nodes(the_delete(explained(fold)))]
    assert not {"Nested Loop", "Hash Join", "Merge Join"} & set(joins), joins
    handled = rows_handled(explained(fold, analyze=True))
    assert handled < 40 * len(people), handled


def test_the_ids_condition_gives_the_ids_the_columns_own_type(users):
    """
    PostgreSQL looks a long ``= ANY`` list up in a hash table only when its
    elements have the column's type. A ``bigint`` list against an ``integer``
    column is searched from its start for every row: a broadcast's read of
    5,000 entries among 5,000 users spent 75 ms there, 1 ms with the cast.
    """
    if connection.vendor != "postgresql":
        pytest.skip("the ids go as one array on PostgreSQL only")
    condition = sql.ids_condition(connection, InboxEntry, [u.pk for u in users], "user")
    statement, params = InboxEntry.objects.filter(condition).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (VERBOSE) {statement}", params)
        plan = "\n".join(line for (line,) in cursor.fetchall())
    column_type = InboxEntry._meta.get_field("user").db_type(connection)
    assert f"::{column_type}[]" in plan, plan
