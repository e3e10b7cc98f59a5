"""The database backend against the shared contract, on whichever database the run uses."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pigeonhole.backends.base import Recipients
from pigeonhole.backends.db import DatabaseBackend
from pigeonhole.exceptions import MessageNotFound
from pigeonhole.models import InboxEntry, Message

from .contract import BackendContract, InboxContract, new, texts

pytestmark = pytest.mark.django_db


class TestDatabaseBackend(BackendContract, InboxContract):
    @pytest.fixture
    def backend(self):
        return DatabaseBackend()

    def test_small_batches_still_reach_everyone(self, users):
        backend = DatabaseBackend()
        backend.batch_size = backend.array_batch_size = 2
        sent = backend.send(new("batched"), Recipients(ids=[u.pk for u in users]))
        assert sent.recipient_count == 3
        assert all(backend.count(u.pk) == 1 for u in users)


class TestDatabaseDeliveriesInSmallChunks:
    """The contract's deliveries again, with a broadcast's users read two at a time."""

    @pytest.fixture
    def backend(self):
        backend = DatabaseBackend()
        backend.deliveries_chunk = 2
        return backend

    test_deliveries_read_many_users_entries_of_one_message_with_their_counts = (
        BackendContract.test_deliveries_read_many_users_entries_of_one_message_with_their_counts
    )
    test_deliveries_give_each_entry_every_field_as_a_listing_does = (
        BackendContract.test_deliveries_give_each_entry_every_field_as_a_listing_does
    )


def own_statements(captured):
    """The first word of each statement on pigeonhole's tables, in order."""
    return [
        query["sql"].lstrip().split()[0].upper()
        for query in captured.captured_queries
        if "pigeonhole_" in query["sql"]
    ]


#: Whether the database updates and reads back in one statement (MariaDB does not).
RETURNING = connection.vendor in ("postgresql", "sqlite")


class TestStatementCounts:
    """The request path's own statements per database: a second one coming back fails here."""

    def test_claiming_a_page_of_unread_messages_is_one_statement(self, uid, users):
        backend = DatabaseBackend()
        backend.claim_unread(uid)  # builds the statement
        for i in range(3):
            backend.add(new(f"m{i}"), uid)
        backend.add(new("someone else's"), users[1].pk)
        with CaptureQueriesContext(connection) as captured:
            assert texts(backend.claim_unread(uid, limit=100)) == ["m2", "m1", "m0"]
        assert own_statements(captured) == (["UPDATE"] if RETURNING else ["SELECT", "UPDATE"])
        assert backend.count(uid) == 0

    @pytest.mark.parametrize("action", ["mark_read", "archive", "mark_unread", "unarchive"])
    def test_acknowledging_is_one_statement(self, uid, action):
        backend = DatabaseBackend()
        a, b = backend.add(new("a"), uid), backend.add(new("b"), uid)
        if action in ("mark_unread", "unarchive"):
            undo = {"mark_unread": backend.mark_read, "unarchive": backend.archive}[action]
            undo(uid, [a.id, b.id])
        getattr(backend, action)(uid, [a.id, b.id])  # builds the statement
        undo = {
            "mark_read": backend.mark_unread,
            "archive": backend.unarchive,
            "mark_unread": backend.mark_read,
            "unarchive": backend.archive,
        }[action]
        undo(uid, [a.id, b.id])
        with CaptureQueriesContext(connection) as captured:
            assert getattr(backend, action)(uid, [a.id, b.id, a.id]) == [b.id, a.id]
        clears = action in ("mark_unread", "unarchive")
        expected = ["SELECT", "UPDATE"] if clears and not RETURNING else ["UPDATE"]
        assert own_statements(captured) == expected

    def test_a_foreign_id_undoes_the_acknowledgement_inside_an_outer_transaction(self, users):
        backend = DatabaseBackend()
        uid = users[0].pk
        with transaction.atomic():
            mine = backend.add(new("mine"), uid)
            read = backend.add(new("read"), uid)
            backend.mark_read(uid, [read.id])
            theirs = backend.add(new("theirs"), users[1].pk)
            with pytest.raises(MessageNotFound) as refused:
                backend.mark_read(uid, [mine.id, read.id, theirs.id, 10**9])
            assert set(refused.value.ids) == {theirs.id, 10**9}
            assert backend.count(uid) == 1 and backend.count(users[1].pk) == 1
            # The outer transaction goes on: the savepoint took only the refused change.
            assert backend.mark_read(uid, [mine.id, read.id]) == [mine.id]
        assert backend.count(uid) == 0

    def test_an_already_read_id_is_not_a_foreign_one(self, uid):
        backend = DatabaseBackend()
        a, b = backend.add(new("a"), uid), backend.add(new("b"), uid)
        backend.mark_read(uid, [a.id])
        assert backend.mark_read(uid, [a.id, b.id]) == [b.id]
        assert backend.archive(uid, [a.id]) == [a.id]
        assert backend.archive(uid, [a.id, b.id]) == [b.id]

    def test_adding_for_one_user_is_one_statement_on_postgresql(self, uid):
        backend = DatabaseBackend()
        backend.add(new("builds"), uid)
        with CaptureQueriesContext(connection) as captured:
            stored = backend.add(new("one trip"), uid)
        postgres = connection.vendor == "postgresql"
        assert own_statements(captured) == (["WITH"] if postgres else ["INSERT", "INSERT"])
        [listed] = [entry for entry in backend.list(uid) if entry.id == stored.id]
        assert (listed.message_id, str(listed)) == (stored.message_id, "one trip")


class TestPreparedStatements:
    """The request path's statements are built once and then only run."""

    def test_add_writes_the_rows_the_orm_would(self, uid, users):
        expires = timezone.now() + timedelta(days=2)
        stored = DatabaseBackend().add(
            new(
                "prepared",
                data={"k": [1, "two"]},
                safe=True,
                from_user_id=users[1].pk,
                expires=expires,
                close_timeout=3,
            ),
            uid,
        )
        entry = InboxEntry.objects.select_related("message").get(pk=stored.id)
        assert (entry.user_id, entry.message_id, entry.expires) == (uid, stored.message_id, expires)
        content = entry.message
        assert (content.message, content.data, content.safe, content.from_user_id) == (
            "prepared",
            {"k": [1, "two"]},
            True,
            users[1].pk,
        )
        assert (content.close_timeout, content.expires, content.created) == (
            3,
            expires,
            stored.created,
        )
        assert stored.record == Message.objects.get(pk=stored.message_id)

    def test_none_is_null_for_every_field_the_inserts_write(self):
        # The prepared inserts pass None straight through: pin that no field converts it.
        for model in (Message, InboxEntry):
            for field in model._meta.concrete_fields:
                assert field.get_db_prep_save(None, connection) is None, field

    def test_an_add_without_options_leaves_them_null(self, uid):
        stored = DatabaseBackend().add(new("bare"), uid)
        content = Message.objects.get(pk=stored.message_id)
        assert (content.data, content.email, content.category, content.expires) == (None,) * 4
        assert InboxEntry.objects.get(pk=stored.id).expires is None

    def test_a_page_costs_one_query_built_once(self, uid, users):
        backend = DatabaseBackend()
        for i in range(3):
            backend.add(new(f"m{i}"), uid)
        backend.add(new("someone else's"), users[1].pk)
        assert texts(backend.list(uid)) == ["m2", "m1", "m0"]
        built = dict(backend._statements)
        with CaptureQueriesContext(connection) as captured:
            assert texts(backend.list(uid)) == ["m2", "m1", "m0"]
            assert backend.mark_read(uid, [e.id for e in backend.list(uid)], strict=False)
        assert len(captured.captured_queries) == 3  # list, list, update
        assert ("list", "unread", 50, "default", True) in built
        assert {key[0] for key in backend._statements.keys() - built.keys()} == {"set"}

    def test_the_count_runs_from_cached_sql_and_sees_only_the_users_visible_unread(
        self, uid, users
    ):
        backend = DatabaseBackend()
        assert backend.count(uid) == 0  # no row to group: still a number
        a, _, c = (backend.add(new(f"m{i}"), uid) for i in range(3))
        backend.add(new("someone else's"), users[1].pk)
        backend.mark_read(uid, [a.id])
        expiring = backend.add(new("soon", expires=timezone.now() + timedelta(days=1)), uid)
        assert backend.count(uid) == 3
        backend.expire(uid, [expiring.id])
        backend.archive(uid, [c.id])
        built = dict(backend._statements)
        with CaptureQueriesContext(connection) as captured:
            assert backend.count(uid) == 1
            assert backend.count(users[1].pk) == 1
        assert len(captured.captured_queries) == 2
        assert backend._statements.keys() == built.keys()
        assert ("count", "default", True) in built

    def test_the_cached_listing_still_hides_expired_entries(self, uid):
        backend = DatabaseBackend()
        backend.add(new("kept"), uid)
        gone = backend.add(new("gone", expires=timezone.now() + timedelta(days=1)), uid)
        assert texts(backend.list(uid)) == ["gone", "kept"]
        backend.expire(uid, [gone.id])
        assert texts(backend.list(uid)) == ["kept"]
        assert backend.mark_read(uid, [gone.id], strict=False) == []

    def test_without_use_tz(self, uid, settings):
        settings.USE_TZ = False
        backend = DatabaseBackend()
        stored = backend.add(new("naive", created=None), uid)
        [listed] = backend.list(uid)
        assert listed.id == stored.id and listed.created.tzinfo is None
        assert backend.mark_read(uid, [stored.id], strict=False) == [stored.id]

    def test_a_subclass_narrowing_get_queryset_is_honoured(self, uid):
        class OnlyWarnings(DatabaseBackend):
            def get_queryset(self, user_id, *, write=False):
                return super().get_queryset(user_id, write=write).filter(message__level__gte=30)

        backend = OnlyWarnings()
        info = backend.add(new("info", level=21), uid)
        backend.add(new("warning", level=31), uid)
        assert texts(backend.list(uid)) == ["warning"]
        assert backend.mark_read(uid, [info.id], strict=False) == []
        assert texts(DatabaseBackend().list(uid)) == ["warning", "info"]


def request_path(backend, uid):
    """List, count, claim and mark read; return the kinds of cached statement that built."""
    backend.add(new("m0"), uid)
    read = backend.add(new("m1"), uid)
    assert texts(backend.list(uid)) == ["m1", "m0"]
    assert backend.count(uid) == 2
    assert backend.mark_read(uid, [read.id], strict=False) == [read.id]
    assert texts(backend.claim_unread(uid)) == ["m0"]
    return {key[0] for key in backend._statements} - {"insert", "insert both"}


#: The cached statements the plain-SQL request path builds, per database.
PLAIN_SQL = {"list", "count", "set"} | ({"claim", "converters"} if RETURNING else set())


class TestUsesPlainSql:
    """``uses_plain_sql`` picks the request path's SQL; overriding ``get_queryset`` turns it off."""

    def test_the_default_backend_runs_its_own_sql(self, uid):
        assert DatabaseBackend.uses_plain_sql is True
        assert request_path(DatabaseBackend(), uid) == PLAIN_SQL

    def test_a_subclass_overriding_get_queryset_takes_the_orm_path(self, uid):
        class Narrowed(DatabaseBackend):
            def get_queryset(self, user_id, *, write=False):
                return super().get_queryset(user_id, write=write)

        class FurtherDown(Narrowed):
            pass

        assert Narrowed.uses_plain_sql is False and FurtherDown.uses_plain_sql is False
        assert request_path(FurtherDown(), uid) == set()

    def test_the_attribute_set_explicitly_is_honoured(self, uid, users):
        class Orm(DatabaseBackend):
            uses_plain_sql = False

        class KeepsToVisibleRows(DatabaseBackend):
            uses_plain_sql = True

            def get_queryset(self, user_id, *, write=False):
                return super().get_queryset(user_id, write=write)

        assert request_path(Orm(), uid) == set()
        assert request_path(KeepsToVisibleRows(), users[1].pk) == PLAIN_SQL


class TestFanOutStatement:
    """One ``INSERT ... SELECT`` per send, and no foreign key checked for each row."""

    def test_a_join_becomes_a_semi_join_with_one_entry_per_person(self, users):
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group

        first, second = Group.objects.create(name="a"), Group.objects.create(name="b")
        for group in (first, second):
            group.user_set.add(*users)
        recipients = get_user_model().objects.filter(groups__in=[first, second])
        with CaptureQueriesContext(connection) as captured:
            sent = DatabaseBackend().send(new("twice over"), Recipients(queryset=recipients))
        [insert] = [
            q["sql"]
            for q in captured.captured_queries
            if "INSERT INTO" in q["sql"] and "pigeonhole_inboxentry" in q["sql"]
        ]
        assert "DISTINCT" not in insert.upper() and " IN (SELECT" in insert.upper()
        assert sent.recipient_count == 3
        assert sorted(
            InboxEntry.objects.filter(message=sent).values_list("user_id", flat=True)
        ) == (sorted(u.pk for u in users))

    def test_a_query_without_joins_runs_as_it_is(self, users):
        from django.contrib.auth import get_user_model

        recipients = get_user_model().objects.filter(pk__in=[u.pk for u in users[:2]])
        with CaptureQueriesContext(connection) as captured:
            sent = DatabaseBackend().send(new("plain"), Recipients(queryset=recipients))
        [insert] = [
            q["sql"]
            for q in captured.captured_queries
            if "INSERT INTO" in q["sql"] and "pigeonhole_inboxentry" in q["sql"]
        ]
        assert "DISTINCT" not in insert.upper() and " IN (SELECT" not in insert.upper()
        assert sent.recipient_count == 2

    def test_entries_carry_no_database_foreign_keys(self):
        with connection.cursor() as cursor:
            keys = connection.introspection.get_constraints(cursor, InboxEntry._meta.db_table)
        assert not [name for name, info in keys.items() if info["foreign_key"]]

    def test_deleting_a_message_or_a_user_through_django_still_deletes_entries(self, users):
        backend = DatabaseBackend()
        sent = backend.send(new("gone"), Recipients(ids=[u.pk for u in users]))
        Message.objects.filter(pk=sent.pk).delete()
        assert not InboxEntry.objects.filter(message_id=sent.pk).exists()
        backend.send(new("kept"), Recipients(ids=[u.pk for u in users]))
        users[0].delete()
        assert not InboxEntry.objects.filter(user_id=users[0].pk).exists()
        assert InboxEntry.objects.count() == 2

    def test_deleting_a_threads_newest_message_through_django_takes_the_history_along(self, users):
        """
        A thread's history goes with its row, however the row goes: a later
        message starts the thread afresh on every database, as after delete().
        """
        backend = DatabaseBackend()
        uid, first, second, third = users[0].pk, users[1].pk, users[2].pk, users[0].pk
        for text, sender in (("a", first), ("b", second)):
            backend.send(new(text, thread="t", from_user_id=sender), Recipients(ids=[uid]))
        [row] = backend.list(uid, state="all")
        Message.objects.filter(pk=row.message_id).delete()
        backend.send(new("c", thread="t", from_user_id=third), Recipients(ids=[uid]))
        [row] = backend.list(uid, state="all")
        assert (str(row), row.count, row.senders) == ("c", 1, [third])
        assert texts(backend.thread_messages(uid, row.id)) == ["c"]
        assert texts(backend.export_entries(uid)) == ["c"]


@pytest.mark.skipif(
    connection.vendor not in ("postgresql", "sqlite"), reason="MariaDB takes an IN list"
)
def test_a_list_of_ids_goes_to_the_database_as_one_parameter(users):
    with CaptureQueriesContext(connection) as captured:
        sent = DatabaseBackend().send(new("array"), Recipients(ids=[u.pk for u in users]))
    [insert] = [q["sql"] for q in captured.captured_queries if "pigeonhole_inboxentry" in q["sql"]]
    assert ("= ANY(" if connection.vendor == "postgresql" else "json_each(") in insert
    assert sent.recipient_count == 3
    assert sorted(InboxEntry.objects.filter(message=sent).values_list("user_id", flat=True)) == (
        sorted(u.pk for u in users)
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL reads the ids first")
@pytest.mark.parametrize("as_text", [True, False], ids=["ids as text", "ids as rows"])
def test_a_query_sent_into_a_thread_in_batches_reaches_each_user_once(
    users, django_user_model, monkeypatch, as_text
):
    """
    A query's recipients go into a thread as their ids, read first a batch
    at a time: as strings of ids where the key's type allows (integers,
    UUIDs), as rows otherwise. Every batch folds its users' rows and no other.
    """
    from pigeonhole.backends.db import sql

    if not as_text:
        monkeypatch.setattr(sql, "JOINABLE_TYPES", frozenset())
    backend = DatabaseBackend()
    backend.array_batch_size = 2  # three users: two batches
    everyone = Recipients(queryset=django_user_model.objects.all())
    backend.send(new("first", thread="t"), Recipients(ids=[users[1].pk]))
    with CaptureQueriesContext(connection) as captured:
        sent = backend.send(new("second", thread="t"), everyone)
    reads = [q["sql"] for q in captured.captured_queries if "auth_user" in q["sql"]]
    assert len(reads) == 1 and ("string_agg" in reads[0]) == as_text, reads
    assert sent.recipient_count == 3
    rows = InboxEntry.objects.filter(thread="t").order_by("user_id")
    assert [(row.user_id, row.message_id, row.count) for row in rows] == [
        (users[0].pk, sent.pk, 1),
        (users[1].pk, sent.pk, 2),
        (users[2].pk, sent.pk, 1),
    ]


def test_a_user_the_default_manager_hides_keeps_their_row_when_listed_into_a_thread(
    users, django_user_model, monkeypatch
):
    """
    A list goes through the user model's default manager: whom it hides
    gets no new row, so their row of the thread must not be folded either.
    """
    from django.db import models

    class ActiveOnly(models.Manager):
        def get_queryset(self):
            return super().get_queryset().filter(is_active=True)

    backend = DatabaseBackend()
    ids = [u.pk for u in users]
    first = backend.send(new("first", thread="t"), Recipients(ids=ids))
    django_user_model.objects.filter(pk=users[1].pk).update(is_active=False)
    manager = ActiveOnly()
    manager.model = django_user_model
    monkeypatch.setattr(django_user_model._meta, "default_manager", manager)
    second = backend.send(new("second", thread="t"), Recipients(ids=ids))
    assert second.recipient_count == 2
    rows = InboxEntry.objects.filter(thread="t").order_by("user_id")
    assert [(row.user_id, row.message_id) for row in rows] == [
        (users[0].pk, second.pk),
        (users[1].pk, first.pk),
        (users[2].pk, second.pk),
    ]


def test_who_muted_a_thread_is_read_once_for_a_list_of_any_length(users):
    backend = DatabaseBackend()
    backend.batch_size = 2  # recipients in batches of two, and "few" is up to two mutes
    backend.mute(users[1].pk, "deploys")
    with CaptureQueriesContext(connection) as captured:
        reached = backend.unmuted(Recipients(ids=[u.pk for u in users]), "deploys")
    assert own_statements(captured) == ["SELECT"]
    assert list(reached.ids) == [users[0].pk, users[2].pk]


@pytest.mark.skipif(
    connection.vendor not in ("postgresql", "sqlite"), reason="MariaDB takes an IN list"
)
def test_who_muted_a_thread_many_muted_is_looked_up_with_the_ids_as_one_parameter(users):
    backend = DatabaseBackend()
    backend.batch_size = 1  # more than one mute is "many"
    backend.array_batch_size = 1
    backend.mute(users[0].pk, "deploys")
    backend.mute(users[1].pk, "deploys")
    with CaptureQueriesContext(connection) as captured:
        reached = backend.unmuted(Recipients(ids=[u.pk for u in users]), "deploys")
    lookups = [q["sql"] for q in captured.captured_queries if "pigeonhole_mute" in q["sql"]]
    assert len(lookups) == 1 + len(users)  # the first read, then one batch of one each
    array = "= ANY(" if connection.vendor == "postgresql" else "json_each("
    assert all(array in lookup for lookup in lookups[1:])
    assert list(reached.ids) == [users[2].pk]


def _waiting_on_a_lock() -> bool:
    """Whether another connection of this test database waits for a row lock."""
    from django.db import connections

    with connections["default"].cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        else:
            # MariaDB shows a statement waiting for a row lock as one in progress.
            cursor.execute(
                "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() "
                "AND ID <> CONNECTION_ID() AND (INFO LIKE 'INSERT%%' OR INFO LIKE 'DELETE%%')"
            )
        return bool(cursor.fetchone()[0])


def _two_sends_into_one_thread_at_once(
    uid, isolation: str | None = None, *settings: str
) -> list[Exception]:
    """
    Send "b" into thread t in one transaction and hold it open; send "c" in another.

    The second transaction reads first, as a view would, so that at
    ``isolation`` REPEATABLE READ its snapshot predates the first's commit.
    ``settings`` are statements each connection runs first. Return what the
    sends raised.
    """
    import threading

    from django.db import connections

    from ..timing import wait_until

    backend = DatabaseBackend()
    sent, release, errors = threading.Event(), threading.Event(), []

    def set_isolation() -> None:
        if isolation is None:
            return
        with connections["default"].cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL {isolation}"
                )
            else:
                cursor.execute(f"SET SESSION TRANSACTION ISOLATION LEVEL {isolation}")
            for statement in settings:
                cursor.execute(statement)

    def first() -> None:
        try:
            set_isolation()
            with transaction.atomic():
                backend.send(new("b", thread="t"), Recipients(ids=[uid]))
                sent.set()
                assert release.wait(60)
        except Exception as exc:
            errors.append(exc)
        finally:
            sent.set()
            connections.close_all()

    def second() -> None:
        try:
            set_isolation()
            with transaction.atomic():
                backend.count(uid)  # the snapshot
                backend.send(new("c", thread="t"), Recipients(ids=[uid]))
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    one = threading.Thread(target=first)
    one.start()
    assert sent.wait(60)
    two = threading.Thread(target=second)
    two.start()
    try:
        wait_until(lambda: _waiting_on_a_lock() or not two.is_alive())
    finally:
        release.set()
        one.join(60)
        two.join(60)
    return errors


def _rows_per_thread_and_user() -> dict[tuple[str, int], int]:
    from django.db.models import Count

    rows = (
        InboxEntry.objects.filter(thread__isnull=False)
        .values_list("thread", "user_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(thread, user): n for thread, user, n in rows}


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite runs one writer at a time")
def test_two_sends_into_one_thread_at_once_both_land_and_fold(users):
    """
    The second send waits for the first's row of the thread, then folds it.

    Without a retry, it found the row it meant to replace gone and the
    first send's new row in its place: the unique (thread, user) row (or the
    history's id) refused it, and the send failed with an IntegrityError.
    """
    backend = DatabaseBackend()
    uid = users[0].pk
    backend.send(new("a", thread="t"), Recipients(ids=[uid]))
    assert _two_sends_into_one_thread_at_once(uid, "READ COMMITTED") == []
    [row] = backend.list(uid, state="all")
    assert (str(row), row.count) == ("c", 3)
    assert texts(backend.thread_messages(uid, row.id)) == ["a", "b", "c"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite runs one writer at a time")
@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
@pytest.mark.parametrize("thread_before", ["new", "sent to another user", "sent to this user"])
def test_two_sends_into_one_thread_at_a_stricter_level_never_leave_two_rows(
    users, thread_before, isolation
):
    """
    A snapshot older than the first send's commit does not show its rows.

    Where the user has no row of the thread yet, the second send has none to
    fold in its snapshot. PostgreSQL used to let it wait for the thread's
    advisory lock, see no row, and insert a second row for the same user and
    thread; the write to the thread's lock row now fails it with a
    serialization failure. MariaDB's writes read the latest committed rows
    whatever the snapshot, so there the second send folds.
    """
    from django.db import OperationalError

    if isolation == "SERIALIZABLE" and connection.vendor == "mysql":
        pytest.skip("MariaDB's SERIALIZABLE makes the second's first read wait, not its send")
    backend = DatabaseBackend()
    uid = users[0].pk
    before = []
    if thread_before == "sent to another user":
        backend.send(new("other", thread="t"), Recipients(ids=[users[1].pk]))
    elif thread_before == "sent to this user":
        backend.send(new("a", thread="t"), Recipients(ids=[uid]))
        before = ["a"]
    errors = _two_sends_into_one_thread_at_once(uid, isolation)
    assert _rows_per_thread_and_user().get(("t", uid)) == 1
    [row] = backend.list(uid, state="all")
    if connection.vendor == "postgresql":
        [error] = errors
        assert isinstance(error, OperationalError), error
        assert "could not serialize access" in str(error)
        assert (str(row), row.count) == ("b", len(before) + 1)
        assert texts(backend.thread_messages(uid, row.id)) == [*before, "b"]
    else:
        assert errors == []
        assert (str(row), row.count) == ("c", len(before) + 2)
        assert texts(backend.thread_messages(uid, row.id)) == [*before, "b", "c"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "mysql", reason="a setting of MariaDB's InnoDB")
def test_with_mariadbs_snapshot_isolation_the_second_send_fails_not_duplicates(users):
    """
    ``innodb_snapshot_isolation=ON`` (off by default on MariaDB 10.11) fails a
    locking read of a row changed since the snapshot: the thread's lock row.
    """
    from django.db import OperationalError

    backend = DatabaseBackend()
    uid = users[0].pk
    errors = _two_sends_into_one_thread_at_once(
        uid, "REPEATABLE READ", "SET SESSION innodb_snapshot_isolation = ON"
    )
    assert _rows_per_thread_and_user() == {("t", uid): 1}
    [error] = errors
    assert isinstance(error, OperationalError), error
    assert error.args[0] == 1020  # "Record has changed since last read"
    [row] = backend.list(uid, state="all")
    assert (str(row), row.count) == ("b", 1)


def test_deleting_a_message_through_django_deletes_its_history_and_its_rows_history(users):
    """
    The history has no index by message, so no cascade: the receiver finds
    the message's folded entries under the keys of the thread's users.
    """
    from pigeonhole.models import FoldedEntry, Message

    backend = DatabaseBackend()
    one, two = users[0].pk, users[1].pk
    sent = [backend.send(new(t, thread="t"), Recipients(ids=[one, two])) for t in ("a", "b")]
    backend.send(new("c", thread="t"), Recipients(ids=[one]))
    backend.send(new("x", thread="x"), Recipients(ids=[one, two]))
    backend.send(new("y", thread="x"), Recipients(ids=[one, two]))

    Message.objects.filter(pk=sent[1].pk).delete()  # "b": folded for one, the row of two

    history = FoldedEntry.objects.filter(thread="t")
    assert sorted(history.values_list("user_id", "message__message")) == [(one, "a")]
    [row] = [e for e in backend.list(one, state="all") if e.thread == "t"]
    assert texts(backend.thread_messages(one, row.id)) == ["a", "c"]
    assert [str(e) for e in backend.list(two, state="all")] == ["y"]
    assert FoldedEntry.objects.filter(thread="x").count() == 2  # another thread: untouched
    Message.objects.filter(pk=sent[0].pk).delete()
    assert not history.exists()


def test_purge_reads_the_history_in_three_statements_not_once_per_message_it_deletes(users):
    """
    The history of the rows it deletes (through the history's key), the
    search for messages nothing holds, then the cascade of the deleted ones
    (each through the history's index by message): a statement each, however
    many messages go.
    """
    from pigeonhole.models import FoldedEntry

    backend = DatabaseBackend()
    everyone = Recipients(ids=[u.pk for u in users])
    backend.send(new("a", thread="t"), everyone)
    backend.send(new("b", thread="t"), everyone)
    for n in range(4):  # sent to nobody: contents with no entry
        backend.send(new(f"lost {n}", thread="t"), Recipients(ids=[]))
    with CaptureQueriesContext(connection) as captured:
        assert backend.purge()["messages"] == 4
    table = FoldedEntry._meta.db_table
    assert len([q for q in captured.captured_queries if table in q["sql"]]) == 3
    [row] = backend.list(users[0].pk)
    assert texts(backend.thread_messages(users[0].pk, row.id)) == ["a", "b"]


def test_purge_runs_as_many_statements_for_many_threads_as_for_one(users):
    """
    Every older message of a thread is held by history alone. A purge that
    asked about each thread's history in a statement of its own took a
    second per thousand threads with nothing to delete.
    """
    backend = DatabaseBackend()
    everyone = Recipients(ids=[u.pk for u in users])

    def statements_of_a_purge() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert backend.purge() == {"expired": 0, "read": 0, "messages": 0}
        return len(captured.captured_queries)

    for text in ("a", "b"):
        backend.send(new(text, thread="t0"), everyone)
    one_thread = statements_of_a_purge()
    for n in range(1, 30):
        for text in ("a", "b"):
            backend.send(new(text, thread=f"t{n}"), everyone)
    assert statements_of_a_purge() == one_thread


def test_purge_deletes_the_history_of_many_threads_rows_in_as_many_statements_as_one(users):
    """
    A purged row's thread history goes with it. Deleted with a statement
    per thread, a purge of rows in 100,000 threads made 100,000 round trips.
    """
    from pigeonhole.models import FoldedEntry

    backend = DatabaseBackend()
    everyone = Recipients(ids=[u.pk for u in users])
    backend.send(new("stays", thread="kept"), everyone)
    backend.send(new("stays too", thread="kept"), everyone)

    def statements_to_purge(threads: int) -> int:
        keys = [f"{threads}-{n}" for n in range(threads)]
        for key in keys:
            for text in ("a", "b"):
                backend.send(new(text, thread=key), everyone)
        gone = timezone.now() - timedelta(seconds=1)
        InboxEntry.objects.filter(thread__in=keys).update(expires=gone)
        with CaptureQueriesContext(connection) as captured:
            counts = backend.purge(expired=True)
        assert counts == {"expired": threads * len(users), "read": 0, "messages": 2 * threads}
        assert not FoldedEntry.objects.filter(thread__in=keys).exists()
        return len(captured.captured_queries)

    assert statements_to_purge(1) == statements_to_purge(20)
    assert FoldedEntry.objects.filter(thread="kept").count() == len(users)


def test_purge_deletes_a_threads_lock_row_with_its_last_message(users):
    """One row per thread: a site of one-message threads would keep one per message."""
    from pigeonhole.models import Thread

    backend = DatabaseBackend()
    everyone = Recipients(ids=[u.pk for u in users])
    gone = backend.send(new("gone", thread="gone"), everyone)
    backend.send(new("kept", thread="kept"), everyone)
    backend.send(new("newer", thread="kept"), everyone)
    InboxEntry.objects.filter(message_id=gone.pk).update(expires=timezone.now())
    assert backend.purge(expired=True, dry_run=True)["messages"] == 1
    assert Thread.objects.count() == 2  # a dry run keeps them too
    assert backend.purge(expired=True)["messages"] == 1
    assert list(Thread.objects.values_list("thread", flat=True)) == ["kept"]
    backend.send(new("again", thread="gone"), everyone)
    assert sorted(Thread.objects.values_list("thread", flat=True)) == ["gone", "kept"]
