"""
The behaviour every backend shares, as one plain mixin.

Each backend's test module subclasses ``BackendContract`` and provides a
``backend`` fixture; nothing here knows which store it is talking to.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from pigeonhole.backends.base import Recipients
from pigeonhole.exceptions import InvalidMessage, MessageNotFound
from pigeonhole.message import NewMessage, StoredMessage


def new(text="hello", **fields):
    fields.setdefault("level", 21)
    fields.setdefault("created", timezone.now())
    return NewMessage(message=text, **fields)


def texts(entries):
    return [str(entry) for entry in entries]


class BackendContract:
    @pytest.fixture
    def users(self, django_user_model):
        return [django_user_model.objects.create_user(f"user{i}") for i in range(3)]

    @pytest.fixture
    def uid(self, users):
        return users[0].pk

    def test_add_returns_the_entry_as_the_user_will_see_it(self, backend, uid):
        stored = backend.add(new("one", subject="s", extra_tags="a b", data={"k": 1}), uid)
        assert isinstance(stored, StoredMessage)
        assert backend.list(uid) == [stored]
        [listed] = backend.list(uid)
        assert (listed.subject, listed.extra_tags, listed.data, listed.level) == (
            "s",
            "a b",
            {"k": 1},
            21,
        )
        assert backend.get(uid, stored.id).message == "one"

    def test_send_fans_out_to_ids_and_querysets(self, backend, users, django_user_model):
        sent = backend.send(new("by ids"), Recipients(ids=[u.pk for u in users]))
        assert sent.recipient_count == 3
        sent = backend.send(new("by query"), Recipients(queryset=django_user_model.objects.all()))
        assert sent.recipient_count == 3
        for user in users:
            assert texts(backend.list(user.pk)) == ["by query", "by ids"]

    def test_entry_ids_are_ordered_by_arrival(self, backend, uid):
        first = backend.add(new("1"), uid)
        second = backend.add(new("2"), uid)
        assert second.id > first.id

    def test_count_ignores_read_archived_and_expired(self, backend, uid):
        a, b, c, _ = (backend.add(new(str(i)), uid) for i in range(4))
        backend.mark_read(uid, [a.id])
        backend.archive(uid, [b.id])
        backend.expire(uid, [c.id])
        assert backend.count(uid) == 1

    def test_keyset_paging_walks_every_entry_once(self, backend, uid):
        for i in range(10):
            backend.add(new(f"m{i}"), uid)
        seen, after = [], None
        while page := backend.list(uid, limit=3, after=after):
            seen += texts(page)
            after = page[-1].id
        assert seen == [f"m{i}" for i in range(9, -1, -1)]

    def test_filters(self, backend, uid):
        backend.add(new("info", level=21, extra_tags="billing"), uid)
        backend.add(new("error", level=41), uid)
        assert texts(backend.list(uid, levels=[41])) == ["error"]
        assert texts(backend.list(uid, tag="billing")) == ["info"]
        assert texts(backend.list(uid, since=timezone.now() + timedelta(seconds=1))) == []

    def test_mark_read_unread_report_only_changes(self, backend, uid):
        a = backend.add(new("a"), uid)
        assert backend.mark_read(uid, [a.id]) == [a.id]
        assert backend.mark_read(uid, [a.id]) == []
        assert backend.list(uid, state="read")[0].read_at is not None
        assert backend.mark_unread(uid, [a.id]) == [a.id]
        assert backend.count(uid) == 1

    def test_strict_changes_refuse_foreign_ids_and_change_nothing(self, backend, users):
        mine = backend.add(new("mine"), users[0].pk)
        theirs = backend.add(new("theirs"), users[1].pk)
        for change in (backend.mark_read, backend.archive, backend.mark_unread):
            with pytest.raises(MessageNotFound):
                change(users[0].pk, [mine.id, theirs.id])
        assert backend.count(users[0].pk) == 1
        assert backend.count(users[1].pk) == 1

    def test_lenient_mark_read_ignores_foreign_ids(self, backend, users):
        theirs = backend.add(new("theirs"), users[1].pk)
        backend.mark_read(users[0].pk, [theirs.id], strict=False)
        assert backend.count(users[1].pk) == 1

    def test_mark_all_read_up_to_an_id_watermark(self, backend, uid):
        old = [backend.add(new(f"old{i}"), uid) for i in range(3)]
        later = backend.add(new("later"), uid)
        assert sorted(backend.mark_all_read(uid, before=old[-1].id)) == [m.id for m in old]
        assert texts(backend.list(uid)) == ["later"]
        assert backend.mark_all_read(uid) == [later.id]

    def test_mark_all_read_leaves_archived_entries_unread(self, backend, uid):
        archived = backend.add(new("archived"), uid)
        backend.archive(uid, [archived.id])
        assert backend.mark_all_read(uid) == []
        assert backend.list(uid, state="archived")[0].read_at is None

    def test_archive_and_unarchive(self, backend, uid):
        a = backend.add(new("a"), uid)
        assert backend.archive(uid, [a.id]) == [a.id]
        assert backend.archive(uid, [a.id]) == []
        assert texts(backend.list(uid, state="archived")) == ["a"]
        assert backend.list(uid, state="all") == []
        assert backend.unarchive(uid, [a.id]) == [a.id]
        assert texts(backend.list(uid, state="all")) == ["a"]

    def test_delete_refuses_unread_unless_allowed(self, backend, uid):
        a = backend.add(new("a"), uid)
        with pytest.raises(InvalidMessage):
            backend.delete(uid, [a.id])
        assert backend.delete(uid, [a.id], allow_unread=True) == [a.id]
        with pytest.raises(MessageNotFound):
            backend.get(uid, a.id)

    def test_expired_entries_are_invisible_then_purged(self, backend, uid):
        gone = backend.add(new("gone"), uid)
        backend.add(new("kept"), uid)
        backend.expire(uid, [gone.id])
        assert texts(backend.list(uid, state="all")) == ["kept"]
        with pytest.raises(MessageNotFound):
            backend.get(uid, gone.id)
        assert backend.purge(dry_run=True)["expired"] == 1
        assert backend.purge()["expired"] == 1
        assert backend.purge()["expired"] == 0
        assert texts(backend.list(uid, state="all")) == ["kept"]

    def test_purge_read_entries_older_than_a_date(self, backend, uid):
        a = backend.add(new("a"), uid)
        backend.add(new("b"), uid)
        backend.mark_read(uid, [a.id])
        assert backend.purge(read_before=timezone.now() - timedelta(days=1))["read"] == 0
        counts = backend.purge(read_before=timezone.now() + timedelta(seconds=1))
        assert counts["read"] == 1
        assert texts(backend.list(uid, state="all")) == ["b"]
