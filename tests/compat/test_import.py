"""pigeonhole_import on hand-made tables of libraries that no longer install."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

import pigeonhole
from pigeonhole.models import InboxEntry, Message

from . import old_tables

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.db_only]

WHEN = datetime(2019, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture
def tables():
    created = []

    def make(models):
        with connection.schema_editor() as editor:
            for model in models:
                editor.create_model(model)
                created.append(model)

    yield make
    with connection.schema_editor() as editor:
        for model in reversed(created):
            editor.delete_model(model)


def run(*args):
    out = StringIO()
    call_command("pigeonhole_import", *args, stdout=out)
    return out.getvalue()


def test_stored_messages_recipients_read_state_and_idempotence(tables, store, user, other_user):
    tables(old_tables.STORED_MESSAGES)
    old = old_tables.StoredMessage
    read_by_alice = old.objects.create(
        message="Deploy done", level=26, tags="ops", url="/deploys/7/", date=WHEN
    )
    unread = old.objects.create(message="Hi <b>all</b>", level=41, tags="", date=WHEN)
    orphan = old.objects.create(message="Nobody", level=21, tags="", date=WHEN)
    for user_id in (user.pk, other_user.pk):
        old_tables.StoredArchive.objects.create(user_id=user_id, message=read_by_alice)
        old_tables.StoredArchive.objects.create(user_id=user_id, message=unread)
    old_tables.StoredInbox.objects.create(user_id=other_user.pk, message=read_by_alice)
    old_tables.StoredInbox.objects.create(user_id=user.pk, message=unread)
    old_tables.StoredInbox.objects.create(user_id=other_user.pk, message=unread)

    out = run("--from", "stored_messages")
    assert "stored_messages: 3 rows read, 2 messages written (4 inbox entries), 1 skipped." in out
    assert "skipped 1: no recipient" in out
    alice = {m.message: m for m in pigeonhole.inbox(user, state="all")}
    assert set(alice) == {"Deploy done", "Hi <b>all</b>"}
    deploy = alice["Deploy done"]
    assert (deploy.level, deploy.extra_tags, deploy.url, deploy.created) == (
        26, "ops", "/deploys/7/", WHEN
    )  # fmt: skip
    assert deploy.is_read and not alice["Hi <b>all</b>"].is_read
    assert pigeonhole.unread_count(other_user) == 2
    assert deploy.data == {"imported_from": f"stored_messages:{read_by_alice.pk}"}
    assert orphan.pk not in {m.message_id for m in pigeonhole.inbox(user, state="all")}

    again = run("--from", "stored_messages")
    assert "0 messages written" in again and "skipped 2: already imported" in again
    assert (Message.objects.count(), InboxEntry.objects.count()) == (2, 4)


def test_monitio_levels_sender_and_transient_rows(tables, store, user, other_user):
    tables(old_tables.MONITIO)
    monit = old_tables.Monit.objects
    monit.create(
        user_id=user.pk, from_user_id=other_user.pk, subject="Report", message="Ready",
        level=130, extra_tags="x", url="/r/", close_timeout=5, created=WHEN,
    )  # fmt: skip
    monit.create(
        user_id=user.pk, message="Seen", level=120, read=True, created=WHEN,
        modified=WHEN + timedelta(hours=1),
    )  # fmt: skip
    monit.create(user_id=user.pk, message="Flash", level=20, created=WHEN)
    out = run("--from", "monitio")
    assert "skipped 1: not persistent (shown once)" in out
    report, seen = pigeonhole.inbox(user, state="all")[::-1]
    assert (report.level, report.subject, report.from_user_id, report.url) == (
        31, "Report", other_user.pk, "/r/"
    )  # fmt: skip
    assert report.close_timeout == 5 and not report.is_read
    assert (seen.level, seen.read_at) == (21, WHEN + timedelta(hours=1))


def test_dry_run_writes_nothing_and_reports(tables, store, user):
    tables(old_tables.MONITIO)
    for number in range(5):
        old_tables.Monit.objects.create(user_id=user.pk, message=f"#{number}", level=120)
    out = run("--from", "monitio", "--dry-run", "--batch-size", "2")
    assert "Importing from monitio: 5 rows." in out
    assert "  2/5 read, 2 would write, 0 skipped" in out  # progress, a batch at a time
    assert "5 messages would write" in out and "Dry run: nothing was written." in out
    assert Message.objects.count() == 0
    assert "5 messages written" in run("--from", "monitio", "--batch-size", "2")
    assert pigeonhole.unread_count(user) == 5


def test_deleted_recipient_is_skipped_with_a_reason(tables, store, user, django_user_model):
    tables(old_tables.MONITIO)
    gone = django_user_model.objects.create_user(username="gone", password="x")
    old_tables.Monit.objects.create(user_id=gone.pk, message="Lost", level=120)
    gone.delete()
    assert "skipped 1: recipient no longer exists" in run("--from", "monitio")


def test_missing_tables_name_the_fix(store):
    with pytest.raises(CommandError, match="No stored_messages_message"):
        run("--from", "stored_messages")


def test_other_backends_are_refused(settings, store):
    settings.PIGEONHOLE = {
        **settings.PIGEONHOLE,
        "BACKEND": "pigeonhole.backends.redis.RedisBackend",
    }
    with pytest.raises(CommandError, match="database backend"):
        run("--from", "monitio")


def test_writes_are_batched_not_one_query_per_row(tables, store, user, other_user):
    tables(old_tables.MONITIO)

    def queries_to_import(rows):
        for number in range(rows):
            recipient = user if number % 2 else other_user
            old_tables.Monit.objects.create(user_id=recipient.pk, message=f"#{number}", level=120)
        with CaptureQueriesContext(connection) as captured:
            run("--from", "monitio", "--batch-size", "100")
        old_tables.Monit.objects.all().delete()
        return len(captured)

    # 50 rows: more would pass SQLite's 999 parameters per statement, which splits
    # a bulk insert in two whatever the batch size.
    assert queries_to_import(3) == queries_to_import(50)
    assert Message.objects.count() == 53


def test_an_import_locks_each_thread_row_before_it_reads_the_threads_rows(user, other_user):
    """A send into the thread at the same moment must wait, as for another send."""
    from pigeonhole.compat.importers.base import Entry, Importer, Item
    from pigeonhole.models import FoldedEntry, Thread

    class Reader:
        name = "test"

    items = [
        Item(
            source_id=n,
            level=20,
            message=f"m{n}",
            created=WHEN,
            entries=[Entry(user_id=user.pk), Entry(user_id=other_user.pk)],
            thread=thread,
        )
        for n, thread in enumerate(["t", "u", "t", None])
    ]
    with CaptureQueriesContext(connection) as captured:
        Importer(Reader())._write(items)  # type: ignore[arg-type]
    newest = {t: Message.objects.filter(thread=t).latest("id").pk for t in ("t", "u")}
    assert dict(Thread.objects.values_list("thread", "last_message")) == newest
    queries = [q["sql"] for q in captured.captured_queries]
    locks = [i for i, q in enumerate(queries) if Thread._meta.db_table in q]
    history = FoldedEntry._meta.db_table
    reads = [i for i, q in enumerate(queries) if "SELECT" in q and history in q]
    assert len(locks) == 2 and max(locks) < min(reads)
    assert InboxEntry.objects.filter(thread="t", user=user).count() == 1
