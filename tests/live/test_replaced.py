"""Which thread row a new entry replaces, with the store's one read and without it."""

import pytest

import pigeonhole
from pigeonhole.backends.base import BaseBackend
from pigeonhole.backends.db import DatabaseBackend
from pigeonhole.conf import get_backend
from pigeonhole.live import read_snapshot, replaced_rows

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store")]


class WithoutReplaced(DatabaseBackend):
    """A store that cannot read the replaced rows at once, as one from elsewhere may be."""

    replaced = BaseBackend.replaced


class Without:
    """The configured store, without ``replaced()``: only its thread histories."""

    def __init__(self, backend):
        self.thread_messages = backend.thread_messages

    def replaced(self, entries):
        raise NotImplementedError


def test_the_store_and_the_history_agree_on_the_replaced_rows(user, other_user):
    pigeonhole.send([user, other_user], "first", thread="order-7")
    pigeonhole.send(user, "alone", thread="order-8")
    pigeonhole.send([user, other_user], "second", thread="order-7")
    pigeonhole.send(user, "unthreaded")
    new = [e for u in (user, other_user) for e in pigeonhole.inbox(u)]
    found = get_backend().replaced([e for e in new if e.thread])
    assert found == replaced_rows(Without(get_backend()), new)
    rows = {pk: row.id for pk, row in found.items()}
    mine = next(e for e in pigeonhole.inbox(user) if e.thread == "order-7")
    assert rows[mine.id] < mine.id and len(rows) == 2


def test_a_snapshot_cursor_still_covers_the_row_a_missed_message_replaced(user):
    pigeonhole.send(user, "first", thread="order-7")
    before = read_snapshot(user.pk, 0, 50).cursor()
    pigeonhole.send(user, "second", thread="order-7")
    after = read_snapshot(user.pk, before.latest, 50)
    assert after.cursor(before.latest) == before
    assert list(after.replaced) == [after.latest]
