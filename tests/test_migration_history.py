"""
Migration 0006 moves each thread's folded history out of the inbox table, and back; 0007
moves it into a table keyed by (user, thread, id), and back.

A site upgrading with threads in use must keep every message its users received: the rows
that an earlier release marked ``folded`` become ``FoldedEntry`` rows with the same ids and
state, and the thread's row stays the row. Run on every database, where the data step's
statements differ (MariaDB refuses them through the schema editor inside a transaction).
"""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("pigeonhole", "0005_entry_indexes_for_threaded_sends")]
AFTER = [("pigeonhole", "0006_entry_history_table")]
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def at_0005(transactional_db, django_user_model):
    """The schema as 0005 left it, with one user; the latest schema again afterwards."""
    user = django_user_model.objects.create_user(username="carol", password="password")
    apps = migrate(BEFORE)
    yield apps, user.pk
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("pigeonhole"))


def _thread_of_three(apps, user_id):
    """Three messages of one thread: two folded entries and the row, as 0005 stored them."""
    Message = apps.get_model("pigeonhole", "Message")
    Entry = apps.get_model("pigeonhole", "InboxEntry")
    ids = []
    for n in range(3):
        message = Message.objects.create(message=f"m{n}", level=20, thread="t", created=WHEN)
        entry = Entry.objects.create(
            user_id=user_id,
            message_id=message.pk,
            thread="t",
            created=WHEN,
            read_at=WHEN if n == 0 else None,
            folded=n < 2,
            count=n + 1,
        )
        ids.append(entry.pk)
    return ids


def test_folded_entries_move_to_the_history_with_their_ids_and_state(at_0005):
    apps, user_id = at_0005
    first, second, row = _thread_of_three(apps, user_id)

    apps = migrate(AFTER)

    entries = apps.get_model("pigeonhole", "InboxEntry").objects.filter(user_id=user_id)
    history = apps.get_model("pigeonhole", "FoldedEntry").objects.filter(user_id=user_id)
    assert list(entries.values_list("id", "count")) == [(row, 3)]
    moved = list(history.order_by("id").values_list("id", "count", "read_at", "thread"))
    assert moved == [(first, 1, WHEN, "t"), (second, 2, None, "t")]


def test_going_back_puts_the_history_among_the_entries_marked_folded(at_0005):
    apps, user_id = at_0005
    first, second, row = _thread_of_three(apps, user_id)
    migrate(AFTER)

    apps = migrate(BEFORE)

    entries = apps.get_model("pigeonhole", "InboxEntry").objects.filter(user_id=user_id)
    assert list(entries.order_by("id").values_list("id", "folded")) == [
        (first, True),
        (second, True),
        (row, False),
    ]


LATEST = [("pigeonhole", "0007_thread_rows_through_messages")]


def test_the_history_keeps_its_ids_and_state_in_the_table_keyed_by_user_and_thread(at_0005):
    apps, user_id = at_0005
    first, second, _ = _thread_of_three(apps, user_id)
    migrate(AFTER)

    apps = migrate(LATEST)

    history = apps.get_model("pigeonhole", "FoldedEntry").objects.filter(user_id=user_id)
    moved = list(history.order_by("id").values_list("id", "count", "read_at", "thread"))
    assert moved == [(first, 1, WHEN, "t"), (second, 2, None, "t")]
    assert history.get(thread="t", id=second).message.message == "m1"

    apps = migrate(AFTER)  # and back

    history = apps.get_model("pigeonhole", "FoldedEntry").objects.filter(user_id=user_id)
    assert list(history.order_by("id").values_list("id", "thread")) == [(first, "t"), (second, "t")]
