"""
The behaviour every backend shares, as one plain mixin.

Each backend's test module subclasses ``BackendContract`` and provides a
``backend`` fixture; nothing here knows which store it is talking to.
"""

import dataclasses
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from pigeonhole.backends.base import Recipients
from pigeonhole.exceptions import InvalidMessage, MessageNotFound
from pigeonhole.message import Content, NewMessage, StoredMessage

from ..timing import wait_until


def new(text="hello", **fields):
    fields.setdefault("level", 21)
    fields.setdefault("created", timezone.now())
    return NewMessage(message=text, **fields)


def every_field(users, **fields):
    """A message with every content field set, to see each one come back."""
    from django.contrib.contenttypes.models import ContentType

    content_type = ContentType.objects.get_for_model(type(users[0]))
    return new(
        "<b>all</b>",
        level=31,
        subject="Subject",
        extra_tags="billing urgent",
        url="/orders/1/",
        data={"n": [1, 2], "s": "x"},
        safe=True,
        from_user_id=users[1].pk,
        target_content_type_id=content_type.pk,
        target_object_id=str(users[2].pk),
        close_timeout=5,
        email=True,
        **fields,
    )


def full_content(users, original_id, **fields):
    """
    A message with every field of ``Content`` set to something other than its default.

    It fails when a field is added to ``Content`` and not here, so the round
    trip below covers every field of every store.
    """
    fields = {"category": "billing", "thread": "order:1", "reason": "mention", **fields}
    message = every_field(users, in_reply_to_id=original_id, **fields)
    unset = [f.name for f in dataclasses.fields(Content) if getattr(message, f.name) == f.default]
    assert not unset, f"full_content() leaves {unset} at their defaults; set them here"
    return message


def texts(entries):
    return [str(entry) for entry in entries]


def ready_for(backend, uid, action):
    """Add an entry in the state ``action`` changes (read for ``mark_unread``...); return it."""
    entry = backend.add(new("a"), uid)
    for before in CHANGES[action]:
        getattr(backend, before)(uid, [entry.id])
    return entry


def snapshot(backend, uid):
    """Every visible entry of the user with its state: entries compare by text alone."""
    entries = backend.list(uid, state="all", limit=1000)
    entries += backend.list(uid, state="archived", limit=1000)
    return sorted((e.id, e.read_at, e.archived_at, e.expires) for e in entries)


class Rollback(Exception):
    pass


#: Each state change, and the state an entry needs for the change to apply to it.
CHANGES = {
    "mark_read": (),
    "mark_unread": ("mark_read",),
    "archive": (),
    "unarchive": ("archive",),
    "delete": ("mark_read",),
    "expire": (),
}


class BackendContract:
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

    def test_any_text_lists_as_it_was_written(self, backend, users):
        """Quotes, backslashes, slashes, control and non-ASCII characters survive the reply."""
        text = 'a "quote" \\ back/slash\n\t\x01 é 中文 😀 </script> \u2028'
        tags = 'x\\y z/"w"'
        data = {"k": ["\\", "é", None, 1.5, 2**53 - 1]}
        stored = backend.add(new(text, subject=text, extra_tags=tags, data=data), users[0].pk)
        backend.send(new(text), Recipients(ids=[users[1].pk]))  # no entry hash on Redis
        [listed] = backend.list(users[0].pk, state="unread")
        assert listed == stored
        assert (listed.message, listed.subject, listed.extra_tags, listed.data) == (
            text,
            text,
            tags,
            data,
        )
        [sent] = backend.list(users[1].pk, state="unread")
        assert sent.message == text and sent.read_at is None and sent.count == 1
        assert backend.list(users[2].pk, state="unread") == []

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

    def test_snapshots_are_each_users_listing_and_count(self, backend, users):
        """What reconnecting streams read together: each user's own, as if read alone."""
        first, second, third = (user.pk for user in users)
        a, b, c, d = (backend.add(new(str(i)), first) for i in range(4))
        backend.add(new("theirs"), second)
        backend.mark_read(first, [a.id])
        backend.archive(first, [b.id])
        backend.expire(first, [c.id])
        asked = [second, first, third, first]
        found = backend.snapshots(asked, 2)
        expected = [(backend.list(uid, state="all", limit=2), backend.count(uid)) for uid in asked]
        assert found == expected
        assert [[entry.id for entry in entries] for entries, _ in found[1::2]] == [[d.id, a.id]] * 2
        assert [count for _, count in found] == [1, 1, 0, 1]

    def test_counts_match_what_each_tab_lists(self, backend, users):
        uid, other_uid = users[0].pk, users[1].pk
        a, b, c, d, e, f, _ = (backend.add(new(str(i)), uid) for i in range(7))
        backend.add(new("theirs"), other_uid)
        backend.mark_read(uid, [a.id, c.id, e.id])
        backend.archive(uid, [b.id, c.id, f.id])
        backend.expire(uid, [e.id, f.id])  # one read in the inbox, one archived
        assert backend.counts(uid) == {"unread": 2, "all": 3, "archived": 2, "saved": 0}
        for state in ("unread", "all", "archived", "saved"):
            assert len(backend.list(uid, state=state, limit=1000)) == backend.counts(uid)[state]
        assert backend.counts(other_uid) == {"unread": 1, "all": 1, "archived": 0, "saved": 0}
        backend.delete(uid, [d.id], allow_unread=True)
        assert backend.counts(uid) == {"unread": 1, "all": 2, "archived": 2, "saved": 0}

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

    def test_lenient_mark_read_returns_only_what_changed(self, backend, users):
        uid = users[0].pk
        read, unread = backend.add(new("read"), uid), backend.add(new("unread"), uid)
        theirs = backend.add(new("theirs"), users[1].pk)
        backend.mark_read(uid, [read.id])
        changed = backend.mark_read(uid, [read.id, unread.id, theirs.id, 10**9], strict=False)
        assert changed == [unread.id]
        assert backend.count(uid) == 0

    def test_lenient_mark_read_ignores_foreign_ids(self, backend, users):
        theirs = backend.add(new("theirs"), users[1].pk)
        backend.mark_read(users[0].pk, [theirs.id], strict=False)
        assert backend.count(users[1].pk) == 1

    @pytest.mark.parametrize(
        "action", ["mark_read", "mark_unread", "archive", "unarchive", "delete"]
    )
    def test_lenient_changes_skip_foreign_and_expired_ids_and_change_the_rest(
        self, backend, users, action
    ):
        uid = users[0].pk
        mine = [backend.add(new(f"mine {i}"), uid) for i in range(3)]
        gone = backend.add(new("expired"), uid)
        backend.expire(uid, [gone.id])
        theirs = backend.add(new("theirs"), users[1].pk)
        if action in ("mark_unread", "delete"):
            backend.mark_read(uid, [e.id for e in mine])
            backend.mark_read(users[1].pk, [theirs.id])
        if action == "unarchive":
            backend.archive(uid, [e.id for e in mine])
            backend.archive(users[1].pk, [theirs.id])
        before = backend.list(users[1].pk, state="archived" if action == "unarchive" else "all")
        ids = [mine[0].id, theirs.id, gone.id, mine[2].id, theirs.id + 10**6]
        changed = getattr(backend, action)(uid, ids, strict=False)
        assert sorted(changed) == [mine[0].id, mine[2].id]
        assert getattr(backend, action)(uid, [theirs.id], strict=False) == []
        state = "archived" if action == "unarchive" else "all"
        assert backend.list(users[1].pk, state=state) == before
        if action != "delete":
            assert getattr(backend, action)(uid, ids, strict=False) == []  # nothing left to do

    def test_lenient_delete_still_refuses_unread_entries_and_deletes_nothing(self, backend, users):
        read, unread = (
            backend.add(new("read"), users[0].pk),
            backend.add(new("unread"), users[0].pk),
        )
        theirs = backend.add(new("theirs"), users[1].pk)
        backend.mark_read(users[0].pk, [read.id])
        with pytest.raises(InvalidMessage, match=str(unread.id)):
            backend.delete(users[0].pk, [read.id, unread.id, theirs.id], strict=False)
        assert len(backend.list(users[0].pk, state="all")) == 2

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

    def test_forget_user_deletes_every_entry_of_that_user_only(self, backend, users):
        gone, kept = users[0].pk, users[1].pk
        backend.send(new("shared"), Recipients(ids=[gone, kept]))
        read, archived, expired, _ = (backend.add(new(f"own {i}"), gone) for i in range(4))
        backend.mark_read(gone, [read.id])
        backend.archive(gone, [archived.id])
        backend.expire(gone, [expired.id])
        assert backend.forget_user(gone) == 5
        assert backend.list(gone, state="all") == backend.list(gone, state="archived") == []
        assert backend.count(gone) == 0
        with pytest.raises(MessageNotFound):
            backend.get(gone, read.id)
        assert texts(backend.list(kept)) == ["shared"] and backend.count(kept) == 1
        assert backend.forget_user(gone) == 0
        # The four contents only the forgotten user had go at the next purge.
        assert backend.purge()["messages"] == 4
        assert texts(backend.list(kept)) == ["shared"]

    def test_purge_read_entries_older_than_a_date(self, backend, uid):
        a = backend.add(new("a"), uid)
        backend.add(new("b"), uid)
        backend.mark_read(uid, [a.id])
        assert backend.purge(read_before=timezone.now() - timedelta(days=1))["read"] == 0
        counts = backend.purge(read_before=timezone.now() + timedelta(seconds=1))
        assert counts["read"] == 1
        assert texts(backend.list(uid, state="all")) == ["b"]

    def test_datetimes_come_back_exactly_as_given(self, backend, uid):
        created = timezone.now().replace(microsecond=123457) - timedelta(days=3)
        expires = timezone.now().replace(microsecond=999999) + timedelta(days=3650)
        stored = backend.add(new("dated", created=created, expires=expires), uid)
        [listed] = backend.list(uid)
        assert listed.created == stored.created == created
        assert listed.expires == stored.expires == expires
        assert backend.list(uid, since=created) == [listed]
        assert backend.list(uid, before=created) == []
        assert backend.mark_all_read(uid, before=created) == [stored.id]

    def test_every_content_field_survives_the_round_trip(self, backend, users):
        from django.contrib.contenttypes.models import ContentType
        from django.utils.safestring import SafeData

        uid = users[0].pk
        original = backend.send(new("original"), Recipients(ids=[users[1].pk]))
        content_type = ContentType.objects.get_for_model(type(users[0]))
        expires = timezone.now() + timedelta(days=1)
        backend.send(
            every_field(users, in_reply_to_id=original.id, expires=expires),
            Recipients(ids=[uid]),
        )
        [entry] = backend.list(uid)
        assert (entry.level, entry.subject, entry.extra_tags, entry.url, entry.data) == (
            31,
            "Subject",
            "billing urgent",
            "/orders/1/",
            {"n": [1, 2], "s": "x"},
        )
        assert isinstance(entry.message, SafeData)
        assert (entry.from_user_id, entry.target_content_type_id, entry.target_object_id) == (
            users[1].pk,
            content_type.pk,
            str(users[2].pk),
        )
        assert (entry.in_reply_to_id, entry.close_timeout, entry.expires) == (
            original.id,
            5,
            expires,
        )
        assert (entry.user_id, entry.read_at, entry.archived_at) == (uid, None, None)

    def test_every_content_field_comes_back_as_written(self, backend, users):
        uid = users[0].pk
        original = backend.send(new("original"), Recipients(ids=[users[1].pk]))
        sent = full_content(users, original.id)
        added = full_content(users, original.id, thread="order:2")
        entry = backend.add(added, uid)
        assert entry.content_values() == added.content_values()
        backend.send(sent, Recipients(ids=[uid]))
        assert [listed.content_values() for listed in backend.list(uid)] == [
            sent.content_values(),
            added.content_values(),
        ]
        assert backend.get(uid, entry.id).content_values() == added.content_values()

    def test_claim_unread_returns_what_list_shows_and_marks_it_read(self, backend, users):
        uid = users[0].pk
        backend.add(new("oldest"), uid)
        archived = backend.add(new("archived"), uid)
        backend.archive(uid, [archived.id])
        gone = backend.add(new("gone", expires=timezone.now() + timedelta(days=1)), uid)
        backend.expire(uid, [gone.id])
        backend.add(new("theirs"), users[1].pk)
        expires = timezone.now() + timedelta(days=1)
        backend.add(every_field(users, category="billing", expires=expires), uid)
        backend.add(new("newest"), uid)
        listed = backend.list(uid, limit=2)
        claimed = backend.claim_unread(uid, limit=2)
        assert texts(claimed) == ["newest", "<b>all</b>"]
        assert [vars(entry) for entry in claimed] == [vars(entry) for entry in listed]
        assert texts(backend.list(uid)) == ["oldest"]
        assert texts(backend.list(uid, state="read")) == ["newest", "<b>all</b>"]
        assert texts(backend.claim_unread(uid, limit=5)) == ["oldest"]
        assert backend.claim_unread(uid, limit=5) == []
        assert backend.count(users[1].pk) == 1

    def test_send_to_overlapping_groups_reaches_each_user_once(
        self, backend, users, django_user_model
    ):
        from django.contrib.auth.models import Group

        staff = Group.objects.create(name="staff")
        staff.user_set.add(*users)
        others = Group.objects.create(name="others")
        others.user_set.add(users[0], users[1])
        everyone = django_user_model.objects.filter(groups__in=[staff, others])
        assert backend.send(new("once each"), Recipients(queryset=everyone)).recipient_count == 3
        assert [backend.count(user.pk) for user in users] == [1, 1, 1]

    def test_a_group_send_reads_each_user_once_without_sorting_them_all(
        self, backend, users, django_user_model
    ):
        # DISTINCT makes the database read and sort every member before the
        # first reaches the store; WHERE pk IN (the query) streams them.
        from django.contrib.auth.models import Group
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        staff = Group.objects.create(name="staff")
        staff.user_set.add(*users)
        others = Group.objects.create(name="others")
        others.user_set.add(users[0])
        everyone = django_user_model.objects.filter(groups__in=[staff, others])
        with CaptureQueriesContext(connection) as captured:
            sent = backend.send(new("once each"), Recipients(queryset=everyone))
        reads = [q["sql"] for q in captured.captured_queries if "_groups" in q["sql"]]
        assert sent.recipient_count == 3
        assert reads, captured.captured_queries
        assert not [sql for sql in reads if "DISTINCT" in sql.upper()], reads

    def test_tag_filter_matches_whole_words_only(self, backend, uid):
        backend.add(new("tagged", extra_tags="urgent billing"), uid)
        backend.add(new("lookalike", extra_tags="billingx xbilling"), uid)
        assert texts(backend.list(uid, tag="billing")) == ["tagged"]
        assert texts(backend.list(uid, tag="billing", levels=[41])) == []

    def test_since_is_inclusive_and_before_exclusive(self, backend, uid):
        start = timezone.now()
        for i in range(3):
            backend.add(new(f"m{i}", created=start + timedelta(minutes=i)), uid)
        middle = start + timedelta(minutes=1)
        assert texts(backend.list(uid, since=middle)) == ["m2", "m1"]
        assert texts(backend.list(uid, before=middle)) == ["m0"]

    def test_read_state_lists_read_entries_among_many_unread(self, backend, uid):
        first = backend.add(new("read one"), uid)
        for i in range(20):
            backend.add(new(f"unread {i}"), uid)
        backend.mark_read(uid, [first.id])
        assert texts(backend.list(uid, state="read")) == ["read one"]

    def test_paging_skips_expired_entries(self, backend, uid):
        entries = [backend.add(new(f"m{i}"), uid) for i in range(12)]
        backend.expire(uid, [e.id for e in entries[2:10]])
        seen, after = [], None
        while page := backend.list(uid, limit=2, after=after):
            seen += texts(page)
            after = page[-1].id
        assert seen == ["m11", "m10", "m1", "m0"]

    def test_mark_all_read_with_a_datetime_watermark(self, backend, uid):
        start = timezone.now()
        old = backend.add(new("old", created=start - timedelta(minutes=1)), uid)
        backend.add(new("new", created=start + timedelta(minutes=1)), uid)
        assert backend.mark_all_read(uid, before=start) == [old.id]
        assert texts(backend.list(uid)) == ["new"]

    def test_mark_all_read_skips_expired_entries(self, backend, uid):
        gone = backend.add(new("gone"), uid)
        kept = backend.add(new("kept"), uid)
        backend.expire(uid, [gone.id])
        assert backend.mark_all_read(uid) == [kept.id]

    def test_archiving_keeps_the_read_state(self, backend, uid):
        a = backend.add(new("a"), uid)
        backend.mark_read(uid, [a.id])
        backend.archive(uid, [a.id])
        assert backend.mark_unread(uid, [a.id]) == [a.id]
        assert backend.count(uid) == 0  # unread, but archived
        assert backend.list(uid, state="archived")[0].read_at is None
        assert backend.unarchive(uid, [a.id]) == [a.id]
        assert backend.count(uid) == 1

    def test_expired_entries_are_refused_by_every_strict_change(self, backend, uid):
        a = backend.add(new("a"), uid)
        backend.expire(uid, [a.id])
        for change in (
            backend.mark_read,
            backend.mark_unread,
            backend.archive,
            backend.unarchive,
            backend.delete,
            backend.expire,
        ):
            with pytest.raises(MessageNotFound) as caught:
                change(uid, [a.id])
            assert caught.value.ids == [a.id]

    def test_strict_refusal_names_exactly_the_missing_ids(self, backend, users):
        mine = backend.add(new("mine"), users[0].pk)
        theirs = backend.add(new("theirs"), users[1].pk)
        unknown = theirs.id + 10**6
        with pytest.raises(MessageNotFound) as caught:
            backend.archive(users[0].pk, [mine.id, theirs.id, unknown])
        assert caught.value.ids == sorted([theirs.id, unknown], key=str)
        assert backend.list(users[0].pk, state="archived") == []

    def test_delete_refuses_unread_and_then_deletes_nothing(self, backend, uid):
        read = backend.add(new("read"), uid)
        unread = backend.add(new("unread"), uid)
        backend.mark_read(uid, [read.id])
        with pytest.raises(InvalidMessage, match=str(unread.id)):
            backend.delete(uid, [read.id, unread.id])
        assert len(backend.list(uid, state="all")) == 2
        assert backend.delete(uid, [read.id]) == [read.id]

    def test_entries_expiring_later_stay_visible_until_then(self, backend, uid):
        a = backend.add(new("later"), uid)
        backend.expire(uid, [a.id], when=timezone.now() + timedelta(hours=1))
        assert backend.count(uid) == 1
        assert backend.purge() == {"expired": 0, "read": 0, "messages": 0}
        backend.expire(uid, [a.id], when=timezone.now() - timedelta(seconds=1))
        assert backend.count(uid) == 0
        assert backend.list(uid, state="all") == []

    def test_send_to_nobody_leaves_content_for_purge(self, backend):
        sent = backend.send(new("nobody"), Recipients(ids=[]))
        assert sent.recipient_count == 0
        assert backend.purge() == {"expired": 0, "read": 0, "messages": 1}

    def test_content_goes_at_the_purge_after_its_last_entry(self, backend, users):
        backend.send(new("shared"), Recipients(ids=[users[0].pk, users[1].pk]))
        for user in users[:2]:
            [entry] = backend.list(user.pk)
            backend.delete(user.pk, [entry.id], allow_unread=True)
        assert backend.purge(dry_run=True) == {"expired": 0, "read": 0, "messages": 1}
        assert backend.purge() == {"expired": 0, "read": 0, "messages": 1}
        assert backend.purge() == {"expired": 0, "read": 0, "messages": 0}

    def test_dry_run_counts_what_purge_removes_and_changes_nothing(self, backend, users):
        uid = users[0].pk
        a, b, c = (backend.add(new(t), uid) for t in "abc")
        backend.send(new("shared"), Recipients(ids=[users[0].pk, users[1].pk]))
        shared = backend.list(uid)[0]
        backend.mark_read(uid, [a.id, b.id, shared.id])
        backend.expire(uid, [b.id, c.id])
        read_before = timezone.now() + timedelta(seconds=1)
        listed = [texts(backend.list(u.pk, state="all")) for u in users]
        dry = backend.purge(read_before=read_before, dry_run=True)
        assert [texts(backend.list(u.pk, state="all")) for u in users] == listed
        # b is read and expired: it counts once, as expired. The shared content
        # keeps its other recipient's entry.
        assert dry == {"expired": 2, "read": 2, "messages": 3}
        assert backend.purge(read_before=read_before) == dry
        assert texts(backend.list(users[1].pk)) == ["shared"]

    def test_purge_without_expired_counts_read_expired_entries_as_read(self, backend, uid):
        a = backend.add(new("a"), uid)
        backend.mark_read(uid, [a.id])
        backend.expire(uid, [a.id])
        counts = backend.purge(expired=False, read_before=timezone.now() + timedelta(seconds=1))
        assert counts == {"expired": 0, "read": 1, "messages": 1}

    def test_state_counts_unread_and_finds_the_highest_unread_level(self, backend, users):
        uid = users[0].pk
        assert backend.state(uid).unread == 0
        assert backend.state(uid).max_level is None
        error = backend.add(new("error", level=41), uid)
        backend.add(new("info", level=21), uid)
        backend.add(new("warning", level=31), users[1].pk)
        archived = backend.add(new("archived", level=51), uid)
        backend.archive(uid, [archived.id])
        state = backend.state(uid)
        assert (state.unread, state.max_level) == (2, 41)
        assert state.unread == backend.count(uid)
        backend.mark_read(uid, [error.id])
        assert (backend.state(uid).unread, backend.state(uid).max_level) == (1, 21)

    def test_state_version_changes_with_every_change_and_only_then(self, backend, users):
        uid, other = users[0].pk, users[1].pk
        a = backend.add(new("a"), uid)
        b = backend.add(new("b"), uid)
        backend.mark_read(uid, [b.id])
        seen = {backend.state(uid).version}
        assert None not in seen
        assert backend.state(uid).version in seen  # reading changes nothing
        assert backend.state(uid).modified is not None

        def changed():
            version = backend.state(uid).version
            assert version not in seen
            seen.add(version)

        backend.add(new("c"), other)
        backend.list(uid, state="all")
        assert backend.state(uid).version in seen  # another inbox, or a read, is not a change
        backend.send(new("sent"), Recipients(ids=[uid, other]))
        changed()
        # Each pair leaves the counts as they were; the version still moves.
        backend.mark_read(uid, [a.id])
        backend.mark_unread(uid, [b.id])
        changed()
        backend.archive(uid, [a.id])
        changed()
        backend.archive(uid, [b.id])
        backend.unarchive(uid, [a.id])
        changed()
        backend.mark_all_read(uid)
        changed()
        backend.delete(uid, [a.id])
        changed()
        backend.expire(uid, [b.id])
        changed()

    def test_state_version_sees_an_entry_expire_on_its_own(self, backend, uid):
        backend.add(new("lasting"), uid)
        # The version must be read before the entry expires: a machine that stalls
        # past the expiry gets another go with twice the room.
        room = 0.5
        while True:
            expires = timezone.now() + timedelta(seconds=room)
            soon = backend.add(new("soon", expires=expires), uid)
            backend.mark_read(uid, [soon.id])
            before = backend.state(uid).version
            if backend.list(uid, state="read"):
                break
            room *= 2
            assert room < 60, "the machine stalls longer than any expiry tried"
        wait_until(lambda: backend.list(uid, state="read") == [])
        assert backend.state(uid).version != before

    # Email ----------------------------------------------------------------
    def test_claim_email_gives_each_entry_to_one_caller_only(self, backend, users):
        sent = backend.send(new("mail me"), Recipients(ids=[u.pk for u in users]))
        pending = backend.unmailed_for_message(sent.id)
        assert sorted(e.user_id for e in pending) == sorted(u.pk for u in users)
        ids = [e.id for e in pending]
        when = timezone.now()
        assert sorted(backend.claim_email(ids[:2], when)) == sorted(ids[:2])
        assert backend.claim_email(ids, when) == [ids[2]]
        assert backend.claim_email(ids, timezone.now()) == []
        assert backend.unmailed_for_message(sent.id) == []
        assert backend.list(users[0].pk)[0].emailed_at == when

    def test_release_email_undoes_only_its_own_claim(self, backend, users):
        sent = backend.send(new("retry me"), Recipients(ids=[users[0].pk, users[1].pk]))
        first, second = (e.id for e in backend.unmailed_for_message(sent.id))
        mine, theirs = timezone.now(), timezone.now() + timedelta(seconds=1)
        backend.claim_email([first], mine)
        backend.claim_email([second], theirs)
        assert backend.release_email([first, second], mine) == [first]
        assert [e.id for e in backend.unmailed_for_message(sent.id)] == [first]
        due = backend.unmailed_due(timezone.now() + timedelta(seconds=5))
        assert [e.id for e in due] == [first]

    def test_unmailed_for_message_pages_by_id_and_skips_expired(self, backend, users):
        sent = backend.send(new("paged"), Recipients(ids=[u.pk for u in users]))
        other = backend.send(new("other"), Recipients(ids=[users[0].pk]))
        first_page = backend.unmailed_for_message(sent.id, limit=2)
        assert len(first_page) == 2 and first_page[0].id < first_page[1].id
        rest = backend.unmailed_for_message(sent.id, after=first_page[-1].id)
        assert [e.user_id for e in first_page + rest] == [u.pk for u in users]
        backend.expire(users[2].pk, [rest[0].id])
        assert len(backend.unmailed_for_message(sent.id)) == 2
        assert [e.message for e in backend.unmailed_for_message(other.id)] == ["other"]
        assert backend.claim_email([rest[0].id], timezone.now()) == []

    def test_unmailed_due_lists_old_unread_unmailed_entries(self, backend, users):
        uid = users[0].pk
        start = timezone.now()
        old = backend.add(new("old", created=start - timedelta(hours=2), category="c"), uid)
        read = backend.add(new("read", created=start - timedelta(hours=2)), uid)
        archived = backend.add(new("archived", created=start - timedelta(hours=2)), uid)
        mailed = backend.add(new("mailed", created=start - timedelta(hours=2)), uid)
        backend.add(new("fresh", created=start), users[1].pk)
        backend.mark_read(uid, [read.id])
        backend.archive(uid, [archived.id])
        backend.claim_email([mailed.id], start)
        due = backend.unmailed_due(start - timedelta(hours=1))
        assert [(e.id, e.user_id, e.category) for e in due] == [(old.id, uid, "c")]
        backend.mark_unread(uid, [read.id])
        cutoff = start - timedelta(minutes=1)
        assert [e.id for e in backend.unmailed_due(cutoff)] == [old.id, read.id]
        assert [e.id for e in backend.unmailed_due(cutoff, limit=1)] == [old.id]
        first = backend.unmailed_due(cutoff, limit=1)[0]
        assert [e.id for e in backend.unmailed_due(cutoff, after=first)] == [read.id]

    def test_unmailed_due_pages_list_each_due_entry_once(self, backend, users):
        """
        Expired entries in a page, and claims made between pages, neither
        repeat an entry on a later page nor push one out of every page.
        """
        start = timezone.now()
        old = start - timedelta(hours=2)
        added = [backend.add(new(f"due {i}", created=old), users[i % 3].pk) for i in range(12)]
        for entry in added[:4]:
            backend.expire(entry.user_id, [entry.id])
        cutoff = start - timedelta(hours=1)
        listed: list[int] = []
        after = None
        while page := backend.unmailed_due(cutoff, limit=3, after=after):
            after = page[-1]
            listed += [e.id for e in page]
            # A delivery task claims some, the cursor's own entry included,
            # before the next page is read.
            backend.claim_email([page[0].id, page[-1].id], timezone.now())
        assert sorted(listed) == sorted(e.id for e in added[4:]), (
            listed,
            [e.id for e in added[4:]],
        )

    # Transactions -----------------------------------------------------------
    def test_a_rolled_back_send_and_add_leave_nothing(
        self, backend, users, django_capture_on_commit_callbacks
    ):
        with (
            django_capture_on_commit_callbacks(execute=True) as callbacks,
            pytest.raises(Rollback),
            transaction.atomic(),
        ):
            sent = backend.send(new("never"), Recipients(ids=[u.pk for u in users]))
            backend.add(new("never either"), users[0].pk)
            raise Rollback
        assert sent.recipient_count == 3
        assert callbacks == []
        for user in users:
            assert backend.list(user.pk, state="all") == []
            assert backend.count(user.pk) == 0
        assert backend.unmailed_for_message(sent.id) == []
        assert backend.purge() == {"expired": 0, "read": 0, "messages": 0}

    def test_a_committed_send_and_add_are_there_after_the_commit_with_their_ids(
        self, backend, users, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            sent = backend.send(new("sent"), Recipients(ids=[u.pk for u in users]))
            added = backend.add(new("added"), users[0].pk)
        assert sent.recipient_count == 3
        newest = backend.list(users[0].pk)[0]
        assert (newest.id, str(newest)) == (added.id, "added")
        assert [e.message_id for e in backend.list(users[1].pk)] == [sent.id]
        assert texts(backend.list(users[0].pk, state="all")) == ["added", "sent"]
        assert [backend.count(u.pk) for u in users] == [2, 1, 1]

    @pytest.mark.parametrize("action", list(CHANGES))
    def test_a_rolled_back_state_change_leaves_the_state_unchanged(
        self, backend, uid, action, django_capture_on_commit_callbacks
    ):
        entry = ready_for(backend, uid, action)
        listed = snapshot(backend, uid)
        with (
            django_capture_on_commit_callbacks(execute=True),
            pytest.raises(Rollback),
            transaction.atomic(),
        ):
            assert getattr(backend, action)(uid, [entry.id]) == [entry.id]
            raise Rollback
        assert snapshot(backend, uid) == listed

    @pytest.mark.parametrize("action", list(CHANGES))
    def test_a_state_change_in_a_transaction_applies_on_commit(
        self, backend, uid, action, django_capture_on_commit_callbacks
    ):
        entry = ready_for(backend, uid, action)
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            changed = getattr(backend, action)(uid, [entry.id])
        assert changed == [entry.id]
        # Applied: the same change has nothing left to do (or nothing left to find).
        if action in ("delete", "expire"):
            assert backend.list(uid, state="all") == backend.list(uid, state="archived") == []
        else:
            assert getattr(backend, action)(uid, [entry.id]) == []

    def test_a_strict_change_in_a_transaction_refuses_at_once(self, backend, users):
        mine = backend.add(new("mine"), users[0].pk)
        theirs = backend.add(new("theirs"), users[1].pk)
        with transaction.atomic():
            with pytest.raises(MessageNotFound) as caught:
                backend.archive(users[0].pk, [mine.id, theirs.id])
            assert caught.value.ids == [theirs.id]
            with pytest.raises(InvalidMessage, match=str(mine.id)):
                backend.delete(users[0].pk, [mine.id])

    def test_a_rolled_back_mark_all_read_leaves_everything_unread(
        self, backend, uid, django_capture_on_commit_callbacks
    ):
        entries = [backend.add(new(f"m{i}"), uid) for i in range(3)]
        with (
            django_capture_on_commit_callbacks(execute=True),
            pytest.raises(Rollback),
            transaction.atomic(),
        ):
            assert sorted(backend.mark_all_read(uid)) == [e.id for e in entries]
            raise Rollback
        assert backend.count(uid) == 3
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            backend.mark_all_read(uid, before=entries[1].id)
        assert texts(backend.list(uid)) == ["m2"]

    def test_a_rolled_back_savepoint_inside_a_committed_transaction_leaves_nothing(
        self, backend, users, django_capture_on_commit_callbacks
    ):
        uid = users[0].pk
        read = backend.add(new("read"), uid)
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            backend.add(new("kept"), uid)
            with pytest.raises(Rollback), transaction.atomic():
                backend.send(new("gone"), Recipients(ids=[u.pk for u in users]))
                backend.mark_read(uid, [read.id])
                raise Rollback
        assert texts(backend.list(uid)) == ["kept", "read"]
        assert [backend.count(u.pk) for u in users] == [2, 0, 0]

    def test_deliveries_read_many_users_entries_of_one_message_with_their_counts(
        self, backend, users, django_user_model
    ):
        first, second, third = (u.pk for u in users)
        backend.add(new("earlier"), first)
        sent = backend.send(new("to all"), Recipients(queryset=django_user_model.objects.all()))
        backend.send(new("later, to one"), Recipients(ids=[second]))
        expected = {
            u.pk: entry
            for u in users
            for entry in backend.list(u.pk, limit=5)
            if entry.message_id == sent.id
        }
        backend.expire(third, [expected[third].id])
        # Users are named as the broker carries them (text); one is not a recipient.
        found = backend.deliveries(sent.id, [str(first), str(second), str(third), "999999"])
        assert sorted((entry.user_id, entry.id, unread) for entry, unread in found) == [
            (first, expected[first].id, 2),
            (second, expected[second].id, 2),
        ]
        [(entry, _)] = [pair for pair in found if pair[0].user_id == first]
        assert entry == expected[first]
        assert (entry.message, entry.is_read) == ("to all", False)
        assert backend.deliveries(sent.id, []) == []

    def test_deliveries_give_each_entry_every_field_as_a_listing_does(
        self, backend, users, django_user_model
    ):
        sent = backend.send(
            every_field(users), Recipients(queryset=django_user_model.objects.all())
        )
        backend.mark_read(users[1].pk, [e.id for e in backend.list(users[1].pk)])
        found = backend.deliveries(sent.id, [str(u.pk) for u in users])
        assert len(found) == len(users)
        for entry, _ in found:
            [listed] = backend.list(entry.user_id, state="all")
            assert vars(entry) == vars(listed)
            assert type(entry.message) is type(listed.message)  # marked safe, or not


class InboxContract:
    """
    Threads, reasons, seen, saved and mute: the GitHub-style inbox, on every store.

    A thread is one row per recipient, showing its newest message; older
    messages fold into it and stay reachable through ``thread_messages()``.
    """

    def test_a_thread_is_one_row_showing_its_newest_message(self, backend, users):
        uid = users[0].pk
        for i, sender in enumerate(users):
            backend.send(
                new(f"m{i}", thread="issue:1", from_user_id=sender.pk), Recipients(ids=[uid])
            )
        [row] = backend.list(uid, state="all")
        assert (str(row), row.thread, row.count) == ("m2", "issue:1", 3)
        assert row.senders == [users[2].pk, users[1].pk, users[0].pk]
        assert backend.count(uid) == 1
        assert backend.counts(uid)["all"] == 1
        assert texts(backend.thread_messages(uid, row.id)) == ["m0", "m1", "m2"]

    def test_a_new_message_moves_the_row_to_the_top_unread_and_unarchived(self, backend, uid):
        first = backend.add(new("first", thread="t"), uid)
        other = backend.add(new("other"), uid)
        backend.mark_read(uid, [first.id])
        backend.archive(uid, [first.id])
        second = backend.add(new("second", thread="t"), uid)
        assert second.id > other.id
        assert texts(backend.list(uid)) == ["second", "other"]
        assert backend.list(uid, state="archived") == []
        [row, _] = backend.list(uid)
        assert (row.id, row.count, row.read_at, row.archived_at) == (second.id, 1, None, None)
        with pytest.raises(MessageNotFound):
            backend.get(uid, first.id)  # folded into the new row

    def test_count_is_the_messages_since_the_thread_was_last_read(self, backend, uid):
        for text in ("a", "b"):
            backend.add(new(text, thread="t"), uid)
        [row] = backend.list(uid)
        assert row.count == 2
        backend.mark_read(uid, [row.id])
        for text in ("c", "d", "e"):
            backend.add(new(text, thread="t"), uid)
        [row] = backend.list(uid)
        assert (str(row), row.count) == ("e", 3)
        assert texts(backend.thread_messages(uid, row.id)) == ["a", "b", "c", "d", "e"]

    def test_senders_are_the_three_most_recent_distinct_ones(
        self, backend, users, django_user_model
    ):
        uid = users[0].pk
        extra = django_user_model.objects.create_user("user3")
        s1, s2, s3, s4 = users[1].pk, users[2].pk, extra.pk, uid
        for sender in (s1, s2, s1, None, s3, s1, s4):
            backend.add(new("x", thread="t", from_user_id=sender), uid)
        [row] = backend.list(uid)
        assert row.senders == [s4, s1, s3]
        assert row.count == 7

    def test_threads_are_per_user_and_key_and_untouched_without_one(self, backend, users):
        one, two = users[0].pk, users[1].pk
        backend.send(new("a1", thread="a"), Recipients(ids=[one, two]))
        backend.send(new("b1", thread="b"), Recipients(ids=[one]))
        backend.send(new("plain"), Recipients(ids=[one, two]))
        backend.send(new("plain again"), Recipients(ids=[one, two]))
        backend.send(new("a2", thread="a"), Recipients(ids=[two]))
        assert texts(backend.list(one)) == ["plain again", "plain", "b1", "a1"]
        assert texts(backend.list(two)) == ["a2", "plain again", "plain"]
        assert backend.count(one) == 4 and backend.count(two) == 3

    def test_thread_messages_lists_only_what_the_user_received(self, backend, users):
        one, two = users[0].pk, users[1].pk
        backend.send(new("to one", thread="t"), Recipients(ids=[one]))
        backend.send(new("to both", thread="t"), Recipients(ids=[one, two]))
        [theirs] = backend.list(two)
        [mine] = backend.list(one)
        assert texts(backend.thread_messages(two, theirs.id)) == ["to both"]
        assert texts(backend.thread_messages(one, mine.id)) == ["to one", "to both"]
        with pytest.raises(MessageNotFound):
            backend.thread_messages(one, theirs.id)
        plain = backend.add(new("plain"), one)
        assert texts(backend.thread_messages(one, plain.id)) == ["plain"]

    def test_replaced_reads_the_row_each_new_entry_folded_for_many_users(self, backend, users):
        one, two, three = (u.pk for u in users)
        backend.send(new("a1", thread="a"), Recipients(ids=[one, two]))
        backend.send(new("a2", thread="a"), Recipients(ids=[one]))
        [old_one] = backend.list(one)
        backend.mark_read(one, [old_one.id])
        [old_two] = backend.list(two)
        backend.send(new("a3", thread="a"), Recipients(ids=[one, two, three]))
        backend.add(new("b1", thread="b"), one)
        rows = [e for u in (one, two, three) for e in backend.list(u, state="all")]
        found = backend.replaced([e for e in rows if e.thread])
        newest = {(e.user_id, str(e)): e.id for e in rows}
        assert {pk: (old.id, old.user_id, str(old), old.thread) for pk, old in found.items()} == {
            newest[one, "a3"]: (old_one.id, one, "a2", "a"),
            newest[two, "a3"]: (old_two.id, two, "a1", "a"),
        }
        assert found[newest[one, "a3"]].is_read and not found[newest[two, "a3"]].is_read
        assert backend.replaced([]) == {}

    def test_deleting_a_thread_row_deletes_its_history(self, backend, uid):
        for text in ("a", "b"):
            backend.add(new(text, thread="t"), uid)
        [row] = backend.list(uid)
        backend.mark_read(uid, [row.id])
        assert backend.delete(uid, [row.id]) == [row.id]
        again = backend.add(new("c", thread="t"), uid)
        assert (again.count, texts(backend.thread_messages(uid, again.id))) == (1, ["c"])
        assert backend.purge()["messages"] == 2

    @pytest.mark.parametrize("expired", [True, False])
    def test_dry_run_counts_the_contents_a_purged_rows_history_takes(self, backend, users, expired):
        one, two = users[0].pk, users[1].pk
        backend.add(new("a1", thread="a"), one)  # folds into a2: only a2's row keeps it
        backend.send(new("a2", thread="a"), Recipients(ids=[one, two]))
        backend.add(new("b1", thread="b"), one)  # folds into b2, which stays unread
        backend.add(new("b2", thread="b"), one)
        [_, a2] = backend.list(one)
        backend.mark_read(one, [a2.id])
        read_before = timezone.now() + timedelta(seconds=1)
        dry = backend.purge(expired=expired, read_before=read_before, dry_run=True)
        # a2's row goes and takes a1 with it; a2 itself stays, the other recipient's.
        assert dry == {"expired": 0, "read": 1, "messages": 1}
        assert backend.purge(expired=expired, read_before=read_before) == dry
        assert texts(backend.list(one, state="all")) == ["b2"]
        assert texts(backend.list(two)) == ["a2"]

    # Reasons ---------------------------------------------------------------
    def test_reason_is_stored_and_filters_the_inbox(self, backend, uid):
        backend.add(new("mentioned", reason="mention"), uid)
        backend.add(new("assigned", reason="assign"), uid)
        backend.add(new("plain"), uid)
        assert texts(backend.list(uid, reason="mention")) == ["mentioned"]
        assert [e.reason for e in backend.list(uid)] == ["", "assign", "mention"]
        backend.add(new("later", thread="t", reason="mention"), uid)
        backend.add(new("latest", thread="t", reason="comment"), uid)
        assert texts(backend.list(uid, reason="comment")) == ["latest"]
        assert texts(backend.list(uid, reason="mention")) == ["mentioned"]

    # Seen ------------------------------------------------------------------
    def test_mark_seen_up_to_a_watermark_and_read_implies_seen(self, backend, uid):
        a, b, c = (backend.add(new(t), uid) for t in "abc")
        assert backend.unseen_count(uid) == 3
        assert not any(e.seen for e in backend.list(uid))
        assert sorted(backend.mark_seen(uid, before=b.id)) == [a.id, b.id]
        assert backend.mark_seen(uid, before=b.id) == []
        assert backend.unseen_count(uid) == 1
        assert backend.count(uid) == 3  # seen is not read
        backend.mark_read(uid, [c.id])
        assert backend.unseen_count(uid) == 0
        assert all(e.seen for e in backend.list(uid, state="all"))
        assert backend.mark_seen(uid) == []

    def test_a_new_thread_message_is_unseen_again(self, backend, uid):
        backend.add(new("a", thread="t"), uid)
        backend.mark_seen(uid)
        assert backend.unseen_count(uid) == 0
        backend.add(new("b", thread="t"), uid)
        assert backend.unseen_count(uid) == 1
        [row] = backend.list(uid)
        assert not row.seen and row.seen_at is None

    def test_archived_and_expired_entries_are_not_unseen(self, backend, uid):
        a, b, _ = (backend.add(new(t), uid) for t in "abc")
        backend.archive(uid, [a.id])
        backend.expire(uid, [b.id])
        assert backend.unseen_count(uid) == 1

    # Saved -----------------------------------------------------------------
    def test_save_unsave_and_the_saved_listing(self, backend, users):
        uid = users[0].pk
        a, b = backend.add(new("a"), uid), backend.add(new("b"), uid)
        theirs = backend.add(new("theirs"), users[1].pk)
        assert backend.save(uid, [a.id]) == [a.id]
        assert backend.save(uid, [a.id]) == []
        with pytest.raises(MessageNotFound):
            backend.save(uid, [b.id, theirs.id])
        assert texts(backend.list(uid, state="saved")) == ["a"]
        assert backend.counts(uid)["saved"] == 1
        [saved] = backend.list(uid, state="saved")
        assert saved.is_saved and saved.saved_at is not None
        backend.mark_read(uid, [a.id])
        backend.archive(uid, [a.id])
        assert texts(backend.list(uid, state="saved")) == ["a"]  # saved whatever else
        assert backend.unsave(uid, [a.id, b.id]) == [a.id]
        assert backend.list(uid, state="saved") == []
        assert backend.counts(uid)["saved"] == 0

    def test_a_saved_entry_cannot_be_deleted_until_unsaved(self, backend, uid):
        a = backend.add(new("keep"), uid)
        backend.mark_read(uid, [a.id])
        backend.save(uid, [a.id])
        with pytest.raises(InvalidMessage, match="saved"):
            backend.delete(uid, [a.id], allow_unread=True)
        assert backend.delete(uid, [a.id], strict=False, allow_unread=True) == []
        backend.unsave(uid, [a.id])
        assert backend.delete(uid, [a.id]) == [a.id]

    def test_a_saved_entry_survives_purge(self, backend, uid):
        kept, gone = backend.add(new("kept"), uid), backend.add(new("gone"), uid)
        backend.mark_read(uid, [kept.id, gone.id])
        backend.save(uid, [kept.id])
        counts = backend.purge(read_before=timezone.now() + timedelta(seconds=1))
        assert counts == {"expired": 0, "read": 1, "messages": 1}
        assert texts(backend.list(uid, state="saved")) == ["kept"]

    def test_a_thread_stays_saved_when_a_message_arrives(self, backend, uid):
        first = backend.add(new("a", thread="t"), uid)
        backend.save(uid, [first.id])
        backend.add(new("b", thread="t"), uid)
        assert texts(backend.list(uid, state="saved")) == ["b"]

    # Mute ------------------------------------------------------------------
    def test_a_muted_thread_gives_that_user_no_entry(self, backend, users):
        one, two = users[0].pk, users[1].pk
        backend.send(new("before", thread="t"), Recipients(ids=[one, two]))
        assert backend.mute(one, "t") is True
        assert backend.mute(one, "t") is False
        assert backend.muted_threads(one) == ["t"]
        assert backend.muted_threads(two) == []
        sent = backend.send(new("muted", thread="t"), Recipients(ids=[one, two]))
        assert sent.recipient_count == 1
        assert texts(backend.list(one)) == ["before"]
        assert texts(backend.list(two)) == ["muted"]
        backend.add(new("add muted", thread="t"), one)
        assert texts(backend.list(one)) == ["before"]
        backend.send(new("other thread", thread="u"), Recipients(ids=[one]))
        assert backend.unmute(one, "t") is True
        assert backend.unmute(one, "t") is False
        assert backend.muted_threads(one) == []
        backend.send(new("after", thread="t"), Recipients(ids=[one]))
        assert texts(backend.list(one)) == ["after", "other thread"]

    def test_mute_reaches_querysets_too(self, backend, users, django_user_model):
        backend.mute(users[0].pk, "t")
        sent = backend.send(
            new("to all", thread="t"), Recipients(queryset=django_user_model.objects.all())
        )
        assert sent.recipient_count == 2
        assert backend.list(users[0].pk) == []

    def test_unmuted_leaves_out_exactly_who_muted_among_many(self, backend, django_user_model):
        # Enough users to spread over every slot group of a sharded store, and
        # over more than one chunk of a store that reads a chunk at a time.
        django_user_model.objects.bulk_create(
            django_user_model(username=f"many{n}") for n in range(150)
        )
        pks = list(django_user_model.objects.order_by("pk").values_list("pk", flat=True))
        muters = pks[::7]
        for pk in muters:
            backend.mute(pk, "busy")
        backend.mute(pks[1], "other")
        expected = [pk for pk in pks if pk not in muters]
        by_ids = backend.unmuted(Recipients(ids=pks), "busy")
        by_query = backend.unmuted(Recipients(queryset=django_user_model.objects.all()), "busy")
        assert (
            list(by_ids.iter_ids())
            and sorted(pk for c in by_ids.iter_ids() for pk in c) == expected
        )
        assert sorted(pk for c in by_query.iter_ids() for pk in c) == expected
        sent = backend.send(new("busy", thread="busy"), Recipients(ids=pks))
        assert sent.recipient_count == len(expected)

    # Export ----------------------------------------------------------------
    def test_export_entries_holds_every_entry_with_its_history(self, backend, users):
        uid = users[0].pk
        backend.add(new("a", thread="t"), uid)
        backend.add(new("b", thread="t", reason="mention"), uid)
        gone = backend.add(new("expired"), uid)
        backend.expire(uid, [gone.id])
        backend.add(new("theirs"), users[1].pk)
        exported = backend.export_entries(uid)
        assert texts(exported) == ["a", "b", "expired"]
        assert [e.reason for e in exported] == ["", "mention", ""]
        assert all(e.user_id == uid for e in exported)
