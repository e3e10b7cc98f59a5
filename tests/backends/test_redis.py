"""
The Redis backend against the shared contract, then what only Redis can get wrong.

Every test gets its own key prefix on the server ``PIGEONHOLE_TEST_REDIS_URL``
names, and its keys are deleted afterwards. Users still live in the database:
their ids are what the backend stores.
"""

import importlib
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from random import Random

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone
from redis.crc import key_slot

import pigeonhole
from pigeonhole import signals, versions
from pigeonhole.backends.base import Recipients
from pigeonhole.backends.redis import RedisBackend
from pigeonhole.backends.redis.backend import _by_group, _redacted
from pigeonhole.backends.redis.keys import group_of
from pigeonhole.conf import get_backend
from pigeonhole.exceptions import BackendUnavailable, MessageNotFound

from ..timing import wait_until
from .contract import BackendContract, InboxContract, Rollback, new, texts
from .redis_support import (
    RedisSentinel,
    RedisServer,
    backends_made,
    check_indexes,
    delete_keys,
    free_port,
    redis_url,
    unique_prefix,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def url():
    return redis_url()


@pytest.fixture
def make_backend(url):
    """Build backends with fresh prefixes; delete their keys afterwards."""
    yield from backends_made(url)


@pytest.fixture
def checked_backend(make_backend):
    """A backend whose indexes are checked after the test."""
    backend = make_backend()
    yield backend
    check_indexes(backend)


@pytest.fixture
def small_batches(checked_backend):
    """A checked backend with tiny batches, so every scan and fan-out loops."""
    checked_backend.scan_batch = 3
    checked_backend.deliveries_chunk = 2
    checked_backend.chunk_size = 2
    return checked_backend


class TestRedisBackend(BackendContract):
    @pytest.fixture
    def backend(self, checked_backend):
        return checked_backend


class TestRedisInbox(InboxContract):
    @pytest.fixture
    def backend(self, checked_backend):
        return checked_backend


class TestRedisBackendInSmallBatches(BackendContract):
    """The contract again with tiny batches, so every scan and fan-out loops."""

    @pytest.fixture
    def backend(self, small_batches):
        return small_batches


class TestRedisInboxInSmallBatches(InboxContract):
    """Threads, seen, saved and mute again with tiny batches and fan-out chunks."""

    @pytest.fixture
    def backend(self, small_batches):
        return small_batches


class TestRedisLayout:
    """Behaviour the contract leaves to each store, and the invariants of this one."""

    @pytest.fixture
    def backend(self, make_backend):
        return make_backend()

    def test_two_prefixes_on_one_server_never_see_each_other(self, make_backend, uid):
        one, two = make_backend(), make_backend()
        entry = one.add(new("only in one"), uid)
        assert two.list(uid, state="all") == []
        assert two.count(uid) == 0
        with pytest.raises(MessageNotFound):
            two.get(uid, entry.id)
        assert two.purge() == {"expired": 0, "read": 0, "messages": 0}
        assert texts(one.list(uid)) == ["only in one"]
        two.add(new("in two"), uid)
        assert (texts(one.list(uid)), texts(two.list(uid))) == (["only in one"], ["in two"])

    def test_a_claim_is_one_script_call_even_past_expired_entries(self, backend, uid, monkeypatch):
        for i in range(3):
            backend.add(new(f"m{i}"), uid)
        gone = backend.add(new("gone", expires=timezone.now() + timedelta(days=1)), uid)
        backend.expire(uid, [gone.id])
        calls = []
        run = backend._run
        monkeypatch.setattr(
            backend, "_run", lambda name, *a, **k: calls.append(name) or run(name, *a, **k)
        )
        assert texts(backend.claim_unread(uid, limit=100)) == ["m2", "m1", "m0"]
        assert calls == ["list"]
        assert backend.count(uid) == 0 and backend.claim_unread(uid) == []

    def test_an_add_after_an_empty_unread_listing_says_a_page_may_have_noted_it(
        self, backend, uid, settings
    ):
        settings.PIGEONHOLE = {**settings.PIGEONHOLE, "CACHE": "default"}
        assert backend.add(new("first"), uid).noted is False  # no listing yet
        assert texts(backend.claim_unread(uid)) == ["first"]
        assert backend.add(new("after a page that showed one"), uid).noted is False
        assert backend.list(uid, state="unread", tag="none") == []  # filtered: no note
        assert backend.add(new("after a filtered listing"), uid).noted is False
        backend.claim_unread(uid)
        for empty in (lambda: backend.claim_unread(uid), lambda: backend.list(uid)):
            assert empty() == []
            ttl = backend.get_client().ttl(backend.keys.user(uid, "noted"))
            assert 0 < ttl <= versions.TIMEOUT
            stored = backend.add(new("after an empty page"), uid)
            assert stored.noted is True
            assert backend.add(new("the next one"), uid).noted is False  # the flag is taken
            backend.claim_unread(uid)

    def test_without_the_cache_an_empty_listing_flags_nothing(self, backend, uid):
        assert backend.claim_unread(uid) == []
        assert not backend.get_client().exists(backend.keys.user(uid, "noted"))
        assert backend.add(new("first"), uid).noted is False

    def test_every_key_of_one_user_shares_a_hash_slot(self, backend, users):
        uid, other = users[0].pk, users[1].pk
        expiring = new("expires", expires=timezone.now() + timedelta(days=1))
        backend.send(expiring, Recipients(ids=[uid, other]))
        read = backend.add(new("read"), uid)
        backend.mark_read(uid, [read.id])
        backend.archive(uid, [backend.add(new("archived"), uid).id])
        client = backend.get_client()
        names = ("unread", "read", "archived", "unread_exp", "v")
        found = [backend.keys.user(uid, name) for name in names]
        assert all(client.exists(key) for key in found)
        assert {key_slot(key.encode()) for key in found} == {key_slot(found[0].encode())}
        assert key_slot(backend.keys.user(other, "unread").encode()) != key_slot(found[0].encode())

    def test_naive_datetimes_without_use_tz_as_the_orm_returns_them(self, backend, uid, settings):
        settings.USE_TZ = False
        created = datetime(2031, 5, 17, 9, 30, 15, 123457)
        stored = backend.add(new("naive", created=created), uid)
        [listed] = backend.list(uid)
        assert listed.created == stored.created == created
        assert listed.created.tzinfo is None
        backend.mark_read(uid, [stored.id])
        [listed] = backend.list(uid, state="read")
        assert listed.read_at.tzinfo is None
        assert abs(listed.read_at - timezone.now()) < timedelta(minutes=1)

    def test_send_in_chunks_reaches_everyone_with_ids_in_order(self, backend, users):
        backend.chunk_size = 2
        sent = backend.send(new("chunked"), Recipients(ids=[u.pk for u in users]))
        assert sent.recipient_count == 3
        ids = [backend.list(u.pk)[0].id for u in users]
        assert ids == sorted(ids) and len(set(ids)) == 3
        assert {backend.list(u.pk)[0].message_id for u in users} == {sent.id}

    def test_a_send_chunk_written_twice_is_written_once_and_brings_back_no_deleted_entry(
        self, backend, users
    ):
        ids = [u.pk for u in users]
        message = new("once")
        mid, first = backend._reserve(1, len(ids))
        chunks = [(first, ids)]
        assert backend._write_send(message, mid, chunks) == 3
        [gone] = backend.list(ids[0])
        backend.mark_read(ids[0], [gone.id])
        backend.delete(ids[0], [gone.id])
        assert backend._write_send(message, mid, chunks) == 0
        assert [backend.count(pk) for pk in ids] == [0, 1, 1]
        assert backend.list(ids[0], state="all") == []
        check_indexes(backend)

    def test_a_send_queues_each_part_once_for_the_digests(self, backend):
        # One member per part in the digest queue, not one per entry; the
        # digests still page through every entry once, and an entry read or
        # emailed leaves the part.
        group = group_of(1)
        ids = [n for n in range(1, 5000) if group_of(n) == group][:20]
        backend.send(new("queued"), Recipients(ids=ids))
        client = backend.get_client()
        assert client.zcard(backend.keys.index(group, "unmailed")) == 0
        assert client.zcard(backend.keys.index(group, "unmailed_parts")) == 1

        def due() -> list[int]:
            seen, after = [], None
            cutoff = timezone.now() + timedelta(minutes=1)
            while page := backend.unmailed_due(cutoff, limit=7, after=after):
                seen += [row.id for row in page]
                after = page[-1]
            return seen

        everyone = due()
        assert len(everyone) == len(set(everyone)) == 20
        # Seen gives the entry a hash, which takes it out of its part: it waits in
        # ``unmailed`` then, still due.
        backend.mark_seen(ids[2])
        assert sorted(due()) == sorted(everyone)
        check_indexes(backend)
        read = backend.list(ids[0])[0].id
        backend.mark_read(ids[0], [read])
        claimed = backend.list(ids[1])[0].id
        assert backend.claim_email([claimed], timezone.now()) == [claimed]
        assert sorted(due()) == sorted(set(everyone) - {read, claimed})
        check_indexes(backend)

    def test_a_send_writes_no_entry_hash_until_the_entry_first_changes(self, backend, users):
        ids = [u.pk for u in users]
        client = backend.get_client()
        sent = backend.send(new("plain", subject="S"), Recipients(ids=ids))
        entries = [backend.get(pk, backend.list(pk)[0].id) for pk in ids]
        hashes = [backend.keys.entry(group_of(e.user_id), e.id) for e in entries]
        assert not any(client.exists(key) for key in hashes)
        assert [(e.user_id, e.message_id, e.subject, e.is_read) for e in entries] == [
            (pk, sent.id, "S", False) for pk in ids
        ]
        first = entries[0]
        backend.mark_read(first.user_id, [first.id])
        assert client.hget(hashes[0], "u") == str(first.user_id)
        assert backend.get(first.user_id, first.id).created == first.created
        assert not any(client.exists(key) for key in hashes[1:])
        # Another user's id is no entry of theirs, with a hash or without.
        with pytest.raises(MessageNotFound):
            backend.get(ids[1], first.id)
        with pytest.raises(MessageNotFound):
            backend.mark_read(ids[1], [entries[2].id])
        assert backend.count(ids[2]) == 1
        expiring = backend.send(
            new("x", expires=timezone.now() + timedelta(days=1)), Recipients(ids=ids)
        )
        entry = backend.list(ids[0])[0]
        assert entry.message_id == expiring.id
        assert client.exists(backend.keys.entry(group_of(ids[0]), entry.id))
        check_indexes(backend)

    def test_a_group_script_carries_a_whole_chunk_of_its_users_up_to_script_size(self):
        parts = _by_group(100, list(range(1, 2001)), 10)
        assert sum(len(users) for _, _, users in parts) == 2000
        assert max(len(users) for _, _, users in parts) == 10
        # Each part takes consecutive ids, and together they take each id once.
        taken = sorted(i for _, start, users in parts for i in range(start, start + len(users)))
        assert taken == list(range(100, 2100))
        for group, _, users in parts:
            assert {group_of(pk) for pk in users} == {group}

    def test_a_send_reaches_user_ids_that_json_escapes(self, backend):
        # A fan-out script takes its users as one JSON array: ids with quotes,
        # backslashes, commas, control characters or accents arrive as they are.
        ids = ['say "hi"', "back\\slash", "a,b", "tab\there", "café", "一"]
        sent = backend.send(new("escaped"), Recipients(ids=ids))
        assert sent.recipient_count == len(ids)
        for uid in ids:
            [entry] = backend.list(uid)
            assert (entry.user_id, entry.message_id, backend.count(uid)) == (uid, sent.id, 1)
        rows = backend.unmailed_for_message(sent.id)
        assert sorted(row.user_id for row in rows) == sorted(ids)
        check_indexes(backend)

    def test_state_sees_a_send_whose_ids_come_before_the_newest_entry(self, backend, uid):
        """
        A send adds entries without counting a change: a send reserved first
        and written last (two transactions committing out of order) adds no
        newest id, yet the version and the time still move.
        """
        early, late = new("reserved first"), new("reserved last")
        early_mid, early_first = backend._reserve(1, 1)
        late_mid, late_first = backend._reserve(1, 1)
        backend._write_send(late, late_mid, [(late_first, [uid])])
        before = backend.state(uid)
        assert before.modified is not None and before.version is not None
        backend._write_send(early, early_mid, [(early_first, [uid])])
        after = backend.state(uid)
        assert after.version != before.version
        assert after.unread == 2 and after.modified >= before.modified
        assert texts(backend.list(uid)) == ["reserved last", "reserved first"]

    def test_failed_send_takes_back_what_it_wrote(self, backend, users):
        backend.chunk_size = 1

        class Boom(Exception):
            pass

        class FailingRecipients(Recipients):
            def iter_ids(self, chunk_size=2000):
                yield [users[0].pk]
                yield [users[1].pk]
                raise Boom

        with pytest.raises(Boom):
            backend.send(new("half"), FailingRecipients())
        assert [backend.count(u.pk) for u in users] == [0, 0, 0]
        kinds = check_indexes(backend)
        assert "e" not in kinds and "m" not in kinds
        assert backend.purge() == {"expired": 0, "read": 0, "messages": 0}

    def test_two_hundred_rolled_back_sends_leave_nothing_but_the_id_counters(
        self, backend, users, django_capture_on_commit_callbacks
    ):
        ids = [u.pk for u in users]
        for i in range(200):
            with (
                django_capture_on_commit_callbacks(execute=True),
                pytest.raises(Rollback),
                transaction.atomic(),
            ):
                assert backend.send(new(f"never {i}"), Recipients(ids=ids)).recipient_count == 3
                backend.add(new(f"nor this {i}"), ids[0])
                raise Rollback
        assert [backend.count(pk) for pk in ids] == [0, 0, 0]
        assert check_indexes(backend) == {"ids": 2, "layout": 1}
        # The reserved ids are spent: the next entry's id is above all of them.
        assert backend.add(new("after"), ids[0]).id > 200 * 4

    def test_a_write_that_fails_at_commit_raises_there_and_leaves_nothing(
        self, users, django_capture_on_commit_callbacks
    ):
        server = RedisServer().start()
        backend = RedisBackend(url=server.url, socket_connect_timeout=0.5, socket_timeout=1)
        try:
            with (
                pytest.raises(BackendUnavailable, match=server.url),
                django_capture_on_commit_callbacks(execute=True),
                transaction.atomic(),
            ):
                backend.send(new("lost"), Recipients(ids=[u.pk for u in users]))
                server.stop()
            server.start()
            assert backend.count(users[0].pk) == 0
        finally:
            server.stop()
            backend.close()

    def test_purge_gives_back_every_key(self, backend, users):
        backend.send(new("shared"), Recipients(ids=[users[0].pk, users[1].pk]))
        expiring = backend.add(
            new("expiring", expires=timezone.now() + timedelta(days=1)), users[2].pk
        )
        for user in users[:2]:
            [entry] = backend.list(user.pk)
            backend.mark_read(user.pk, [entry.id])
        backend.expire(users[2].pk, [expiring.id])
        backend.purge(read_before=timezone.now() + timedelta(seconds=1))
        assert check_indexes(backend) == {
            "ids": 2,
            "layout": 1,
        }  # the id counters and the layout stamp, nothing else

    def test_forgetting_every_user_then_purging_gives_back_every_key(self, backend, users):
        backend.send(
            new("shared", expires=timezone.now() + timedelta(days=1)),
            Recipients(ids=[u.pk for u in users]),
        )
        for user in users:
            [entry] = backend.list(user.pk)
            backend.mark_read(user.pk, [entry.id])
            backend.add(new("archived"), user.pk)
            backend.archive(user.pk, [backend.list(user.pk)[0].id])
            backend.add(new("unread"), user.pk)
        for user in users:
            backend.forget_user(user.pk)
        backend.purge()
        assert check_indexes(backend) == {"ids": 2, "layout": 1}

    def test_lenient_mark_read_returns_only_what_it_changed(self, backend, users):
        mine = backend.add(new("mine"), users[0].pk)
        read = backend.add(new("read"), users[0].pk)
        expired = backend.add(new("expired"), users[0].pk)
        theirs = backend.add(new("theirs"), users[1].pk)
        backend.mark_read(users[0].pk, [read.id])
        backend.expire(users[0].pk, [expired.id])
        ids = [mine.id, read.id, expired.id, theirs.id, 10**9]
        # The database backend returns every id it was given here (one UPDATE,
        # no read); this one knows exactly what it changed.
        assert backend.mark_read(users[0].pk, ids, strict=False) == [mine.id]

    def test_changes_return_ids_newest_first_like_the_database(self, backend, uid):
        ids = [backend.add(new(str(i)), uid).id for i in range(3)]
        assert backend.mark_read(uid, ids) == ids[::-1]
        assert backend.mark_unread(uid, ids) == ids[::-1]
        assert backend.mark_all_read(uid) == ids[::-1]

    def test_snapshots_read_a_batch_of_users_in_two_round_trips(self, backend, users, monkeypatch):
        """A reconnect storm's batch costs two round trips, not two per user."""
        import redis.connection

        for user in users:
            backend.add(new(f"for {user.pk}"), user.pk)
        asked = [user.pk for user in users] * 5
        expected = [(backend.list(pk, state="all", limit=3), backend.count(pk)) for pk in asked]
        sent = []
        real = redis.connection.AbstractConnection.send_packed_command

        def counted(connection, command, check_health=True):
            sent.append(command)
            return real(connection, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
        assert backend.snapshots(asked, 3) == expected
        assert len(sent) == 2

    def test_snapshots_read_on_past_expired_entries_as_listing_does(self, backend, users):
        backend.scan_batch = 3
        uid, other = users[0].pk, users[1].pk
        kept = [backend.add(new(f"kept {i}"), uid) for i in range(2)]
        backend.expire(uid, [backend.add(new(f"gone {i}"), uid).id for i in range(7)])
        backend.add(new("theirs"), other)
        found = backend.snapshots([uid, other], 2)
        assert [entry.id for entry in found[0][0]] == [entry.id for entry in reversed(kept)]
        assert found == [
            (backend.list(pk, state="all", limit=2), backend.count(pk)) for pk in (uid, other)
        ]

    def test_filters_scan_past_batches_of_entries_that_do_not_match(self, backend, uid):
        backend.scan_batch = 7
        backend.add(new("old billing", extra_tags="billing"), uid)
        for i in range(30):
            backend.add(new(f"noise {i}", extra_tags="billingx xbilling"), uid)
        backend.add(new("error", level=41), uid)
        assert texts(backend.list(uid, tag="billing")) == ["old billing"]
        assert texts(backend.list(uid, levels=[41, 11])) == ["error"]
        assert texts(backend.list(uid, levels=[21], tag="billing", limit=1)) == ["old billing"]
        assert len(backend.list(uid, limit=1000)) == 32

    def test_purge_dry_run_counts_the_history_a_thread_row_takes_with_it(self, backend, uid):
        for text in ("a", "b"):
            backend.add(new(text, thread="t"), uid)
        backend.mark_all_read(uid)
        later = timezone.now() + timedelta(seconds=1)
        expected = {"expired": 0, "read": 1, "messages": 2}
        assert backend.purge(read_before=later, dry_run=True) == expected
        assert backend.purge(read_before=later) == expected
        assert backend.export_entries(uid) == []

    def test_mark_all_read_works_through_big_inboxes_in_chunks(self, backend, users):
        backend.scan_batch = 10
        uid = users[0].pk
        backend.chunk_size = 7
        for i in range(25):
            backend.send(new(f"m{i}"), Recipients(ids=[uid, users[1].pk]))
        newest = backend.list(uid, limit=1)[0]
        watermark = backend.list(uid, limit=5)[-1]
        backend.archive(uid, [newest.id])
        assert len(backend.mark_all_read(uid, before=watermark.id)) == 21
        assert backend.count(uid) == 3
        assert len(backend.mark_all_read(uid)) == 3
        assert backend.count(uid) == 0
        assert backend.count(users[1].pk) == 25

    def test_count_stays_exact_and_fast_with_thousands_unread(self, backend, uid):
        soon = timezone.now() + timedelta(days=1)
        entries = [
            backend.add(new(f"m{i}", expires=soon if i % 2 else None), uid) for i in range(3000)
        ]
        backend.expire(uid, [e.id for e in entries[:1000]])
        backend.mark_read(uid, [e.id for e in entries[1000:1100]])
        started = time.perf_counter()
        for _ in range(200):
            assert backend.count(uid) == 1900
        # Two O(log n) commands: no scan of the 3,000 entries.
        assert time.perf_counter() - started < 1
        assert len(backend.list(uid, limit=1000)) == 1000

    def test_counts_agree_with_listings_under_concurrent_changes(self, backend, users):
        uids = [u.pk for u in users]
        for i in range(30):
            backend.send(new(f"seed {i}"), Recipients(ids=uids))

        def worker(seed):
            rng = Random(seed)
            for _ in range(60):
                uid = rng.choice(uids)
                entries = backend.list(uid, state=rng.choice(["unread", "all", "archived"]))
                ids = [e.id for e in rng.sample(entries, min(len(entries), 3))]
                action = rng.choice(
                    ["read", "unread", "archive", "unarchive", "delete", "all", "send", "add"]
                )
                try:
                    if action == "read":
                        backend.mark_read(uid, ids, strict=rng.random() < 0.5)
                    elif action == "unread":
                        backend.mark_unread(uid, ids)
                    elif action == "archive":
                        backend.archive(uid, ids)
                    elif action == "unarchive":
                        backend.unarchive(uid, ids)
                    elif action == "delete":
                        backend.delete(uid, ids, allow_unread=True)
                    elif action == "all":
                        backend.mark_all_read(uid, before=ids[0] if ids else None)
                    elif action == "send":
                        backend.send(new("more"), Recipients(ids=uids))
                    else:
                        backend.add(new("one"), uid)
                except MessageNotFound:
                    pass  # another worker deleted one first: refused whole, as it should be

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(worker, range(8)))
        for uid in uids:
            unread = backend.list(uid, limit=1000)
            assert backend.count(uid) == len(unread)
            assert all(not e.is_read and not e.is_archived for e in unread)
        check_indexes(backend)


class TestLayout:
    """A store written in another key layout is refused, not read as empty."""

    def test_keys_of_the_first_layout_are_refused_naming_the_fix(self, make_backend, uid):
        backend = make_backend()
        client = backend.get_client()
        client.set(f"{backend.key_prefix}:ids:entry", "41")
        with pytest.raises(BackendUnavailable, match="a new prefix") as caught:
            backend.count(uid)
        assert "layout 1, not 4:64" in str(caught.value)
        assert client.get(backend.keys.layout) is None  # nothing written
        client.delete(f"{backend.key_prefix}:ids:entry")
        backend.add(new("after"), uid)
        assert client.get(backend.keys.layout) == "4:64"

    def test_a_store_of_the_second_layout_is_refused_naming_the_fix(self, make_backend, uid):
        # The second layout kept an ``all`` set beside ``unread`` per user: read
        # as this one, its read entries would vanish from every listing.
        backend = make_backend()
        backend.get_client().set(backend.keys.layout, "2:64")
        with pytest.raises(BackendUnavailable, match="a new prefix") as caught:
            backend.list(uid, state="all")
        assert "layout 2:64, not 4:64" in str(caught.value)

    def test_a_store_of_the_third_layout_is_refused_naming_the_fix(self, make_backend, uid):
        # The third layout queued every entry of a send in ``unmailed``: read
        # as this one, its sends would never reach a digest.
        backend = make_backend()
        backend.get_client().set(backend.keys.layout, "3:64")
        with pytest.raises(BackendUnavailable, match="a new prefix") as caught:
            backend.unmailed_due(timezone.now())
        assert "layout 3:64, not 4:64" in str(caught.value)

    def test_a_store_stamped_with_another_group_count_is_refused(self, make_backend, uid):
        backend = make_backend()
        backend.get_client().set(backend.keys.layout, "2:16")
        with pytest.raises(BackendUnavailable, match=r"layout 2:16, not 4:64"):
            backend.send(new("x"), Recipients(ids=[uid]))


class TestIdsOnlyGrow:
    """Entry and content ids grow across restarts, even of a Redis that lost every key."""

    @pytest.fixture
    def server(self):
        server = RedisServer().start()
        yield server
        server.stop()

    def added_and_sent(self, backend, users):
        sent = backend.send(new("sent"), Recipients(ids=[u.pk for u in users]))
        added = backend.add(new("added"), users[0].pk)
        entries = [added.id, *(backend.list(u.pk, state="all")[-1].id for u in users)]
        return entries, [sent.id, added.message_id]

    def test_a_new_process_after_a_restart_without_persistence(self, server, users):
        before = RedisBackend(url=server.url)
        entries, contents = self.added_and_sent(before, users)
        before.close()
        server.stop()
        server.start()  # no persistence: it comes back empty
        after = RedisBackend(url=server.url)  # another process: it knows no earlier id
        try:
            assert after.count(users[0].pk) == 0
            new_entries, new_contents = self.added_and_sent(after, users)
            assert min(new_entries) > max(entries)
            assert min(new_contents) > max(contents)
        finally:
            after.close()

    def test_a_bulk_reservation_ahead_of_the_clock_then_a_restart(
        self, server, users, django_capture_on_commit_callbacks
    ):
        backend = RedisBackend(url=server.url)
        try:
            entries, contents = self.added_and_sent(backend, users)
            # A send to 100,000 inside a transaction reserves their ids at once:
            # far more ids than the clock hands out in the time a restart takes.
            with (
                django_capture_on_commit_callbacks(execute=True),
                pytest.raises(Rollback),
                transaction.atomic(),
            ):
                big = backend.send(new("big"), Recipients(ids=list(range(1, 100_001))))
                raise Rollback
            reserved = int(backend.get_client().get(backend.keys.counter("entry")))
            assert reserved >= max(entries) + 100_000
            server.stop()
            server.start()
            new_entries, new_contents = self.added_and_sent(backend, users)
            assert min(new_entries) > reserved
            assert min(new_contents) > max([*contents, big.id])
        finally:
            backend.close()

    def test_ids_stay_exact_integers_below_2_to_the_53(self, make_backend, users):
        backend = make_backend()
        entries, contents = self.added_and_sent(backend, users)
        _, first = backend._reserve(0, 1_000_000)
        assert max(entries) < first and first + 1_000_000 < 2**53
        assert all(isinstance(pk, int) and pk < 2**53 for pk in [*entries, *contents])
        # Written and read back as plain digits, never as 1.2e+15.
        kinds = check_indexes(backend)
        client = backend.get_client()
        # The added entry has a hash; the sent ones are read from their send's part.
        keys = list(client.scan_iter(match=f"{backend.key_prefix}:{{g*}}:e:*"))
        assert kinds["e"] == len(keys) == 1 and keys[0].rsplit(":", 1)[1].isdigit()
        parts = [
            part
            for key in client.scan_iter(match=f"{backend.key_prefix}:{{g*}}:ranges")
            for part in client.zrange(key, 0, -1)
        ]
        assert len(parts) == len({group_of(u.pk) for u in users})
        assert all(part.replace(":", "").isdigit() for part in parts)
        assert backend.mark_all_read(users[0].pk) and backend.count(users[0].pk) == 0


class TestScripts:
    def test_every_lua_file_is_a_script_and_ships_as_package_data(self):
        import fnmatch
        import tomllib
        from pathlib import Path

        from pigeonhole.backends.redis import scripts

        package = Path(scripts.__file__).parents[2]
        files = sorted(path.stem for path in (package / "backends/redis/lua").glob("*.lua"))
        assert files == sorted([*scripts.NAMES, "preamble"])
        pyproject = tomllib.loads((package.parents[1] / "pyproject.toml").read_text())
        patterns = pyproject["tool"]["setuptools"]["package-data"]["pigeonhole"]
        for name in files:
            path = f"backends/redis/lua/{name}.lua"
            assert any(fnmatch.fnmatch(path, pattern) for pattern in patterns), path
        assert all(
            source.count("local function ekey") == 1 for source in scripts.sources().values()
        )


class TestConfiguration:
    def test_url_is_required(self):
        with pytest.raises(ImproperlyConfigured, match=r"PIGEONHOLE\['OPTIONS'\].*url"):
            RedisBackend()

    def test_url_must_be_a_redis_url_and_the_error_hides_its_password(self):
        with pytest.raises(ImproperlyConfigured, match="not a Redis URL") as caught:
            RedisBackend(url="http://user:s3cret@example.com/")
        assert "s3cret" not in str(caught.value)

    def test_a_cluster_url_connects_nothing_at_construction_and_hides_its_password(self):
        backend = RedisBackend(url="redis+cluster://:s3cret@10.255.255.1:7000/0")
        assert backend.cluster and backend._client is None
        assert "s3cret" not in repr(backend)

    def test_a_key_prefix_with_a_brace_is_refused(self):
        with pytest.raises(ImproperlyConfigured, match="has a brace"):
            RedisBackend(url="redis://localhost/0", key_prefix="my{site}")

    def test_unknown_options_are_refused_by_name(self):
        with pytest.raises(ImproperlyConfigured, match="using"):
            RedisBackend(url="redis://localhost/0", using="default")

    def test_pool_options_reach_the_pool(self):
        backend = RedisBackend(
            url="redis://127.0.0.1:1/0",
            max_connections=7,
            socket_timeout=1.5,
            socket_connect_timeout=0.5,
            health_check_interval=30,
        )
        pool = backend.get_client().connection_pool
        assert pool.max_connections == 7
        kwargs = pool.connection_kwargs
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (1.5, 0.5)
        assert kwargs["health_check_interval"] == 30
        backend.close()

    def test_nothing_connects_at_construction(self):
        started = time.perf_counter()
        backend = RedisBackend(url="redis://10.255.255.1:6379/0")  # unroutable
        assert backend._client is None
        assert time.perf_counter() - started < 0.5

    def test_missing_redis_py_names_the_pip_install_line(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "redis", None)
        monkeypatch.delitem(sys.modules, "pigeonhole.backends.redis")
        with pytest.raises(ImproperlyConfigured, match=r'pip install "django-pigeonhole\[redis\]"'):
            importlib.import_module("pigeonhole.backends.redis")

    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
            ("redis://me:s3cret@host/1", "redis://me:***@host/1"),
            (
                "rediss://host/0?password=s3cret&ssl_cert_reqs=none",
                "rediss://host/0?password=***&ssl_cert_reqs=none",
            ),
            (
                "unix:///run/redis.sock?db=2&password=s3cret",
                "unix:///run/redis.sock?db=2&password=***",
            ),
            ("redis://host:6379/0", "redis://host:6379/0"),
        ],
    )
    def test_urls_in_messages_never_show_a_password(self, url, shown):
        assert _redacted(url) == shown


class TestUnavailable:
    def test_closed_port_raises_backend_unavailable_naming_the_url(self, user):
        backend = RedisBackend(
            url="redis://:s3cret@127.0.0.1:1/0", socket_connect_timeout=0.5, socket_timeout=0.5
        )
        calls = [
            lambda: backend.count(user.pk),
            lambda: backend.list(user.pk),
            lambda: backend.get(user.pk, 1),
            lambda: backend.add(new("x"), user.pk),
            lambda: backend.send(new("x"), Recipients(ids=[user.pk])),
            lambda: backend.mark_read(user.pk, [1]),
            lambda: backend.mark_all_read(user.pk),
            lambda: backend.purge(),
        ]
        started = time.perf_counter()
        for call in calls:
            with pytest.raises(BackendUnavailable) as caught:
                call()
            message = str(caught.value)
            assert "redis://:***@127.0.0.1:1/0" in message and "s3cret" not in message
        assert time.perf_counter() - started < 5

    def test_server_that_never_answers_times_out_as_backend_unavailable(self, user):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            backend = RedisBackend(url=f"redis://127.0.0.1:{port}/0", socket_timeout=0.3)
            started = time.perf_counter()
            with pytest.raises(BackendUnavailable, match=f"127.0.0.1:{port}"):
                backend.count(user.pk)
            assert time.perf_counter() - started < 3
            backend.close()

    @staticmethod
    def entry_points(backend, uid):
        """Every public method of the store, each called once."""
        when = timezone.now()
        return {
            "send": lambda: backend.send(new("x"), Recipients(ids=[uid])),
            "add": lambda: backend.add(new("x"), uid),
            "list": lambda: backend.list(uid),
            "get": lambda: backend.get(uid, 1),
            "count": lambda: backend.count(uid),
            "counts": lambda: backend.counts(uid),
            "state": lambda: backend.state(uid),
            "mark_read": lambda: backend.mark_read(uid, [1]),
            "mark_unread": lambda: backend.mark_unread(uid, [1]),
            "mark_all_read": lambda: backend.mark_all_read(uid),
            "archive": lambda: backend.archive(uid, [1]),
            "unarchive": lambda: backend.unarchive(uid, [1]),
            "delete": lambda: backend.delete(uid, [1]),
            "expire": lambda: backend.expire(uid, [1]),
            "purge": lambda: backend.purge(read_before=when),
            "purge dry run": lambda: backend.purge(read_before=when, dry_run=True),
            "unmailed_for_message": lambda: backend.unmailed_for_message(1),
            "unmailed_due": lambda: backend.unmailed_due(when),
            "claim_email": lambda: backend.claim_email([1], when),
            "release_email": lambda: backend.release_email([1], when),
            "forget_user": lambda: backend.forget_user(uid),
        }

    def test_every_entry_point_gives_up_within_the_socket_timeout(self, user):
        """A server that takes the connection and never answers: each call waits once."""
        timeout = 0.5
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            port = listener.getsockname()[1]
            backend = RedisBackend(url=f"redis://127.0.0.1:{port}/0", socket_timeout=timeout)
            slow = {}
            try:
                for name, call in self.entry_points(backend, user.pk).items():
                    started = time.perf_counter()
                    with pytest.raises(BackendUnavailable, match=f"127.0.0.1:{port}"):
                        call()
                    elapsed = time.perf_counter() - started
                    # One timeout and a generous margin for a loaded machine; a call
                    # that waited twice (a retry, a clean-up) would take 1 s or more.
                    if elapsed >= 2 * timeout:
                        slow[name] = round(elapsed, 2)
            finally:
                backend.close()
        assert slow == {}

    def test_server_stopped_mid_test_then_restarted(self, user):
        server = RedisServer(port=free_port()).start()
        backend = RedisBackend(url=server.url, socket_connect_timeout=0.5, socket_timeout=1)
        try:
            entry = backend.add(new("before the crash"), user.pk)
            assert backend.count(user.pk) == 1
            server.stop()
            with pytest.raises(BackendUnavailable, match=server.url):
                backend.count(user.pk)
            with pytest.raises(BackendUnavailable, match=server.url):
                backend.mark_read(user.pk, [entry.id])
            server.start()  # no persistence: it comes back empty
            assert backend.count(user.pk) == 0
            backend.add(new("after the restart"), user.pk)
            assert texts(backend.list(user.pk)) == ["after the restart"]
        finally:
            server.stop()
            backend.close()

    def test_a_send_cut_off_by_a_crash_raises_and_purge_takes_it_back(self, users, tmp_path):
        server = RedisServer(data_dir=tmp_path).start()
        backend = RedisBackend(url=server.url, socket_connect_timeout=0.5, socket_timeout=1)
        backend.chunk_size = 1

        class CrashingRecipients(Recipients):
            def iter_ids(self, chunk_size=2000):
                yield [users[0].pk]
                # A send writes a chunk while it reads the next: let the first land.
                wait_until(lambda: backend.count(users[0].pk) == 1)
                server.stop()  # killed mid-send: the first chunk is on disk
                yield [users[1].pk]
                yield [users[2].pk]

        try:
            started = time.perf_counter()
            with pytest.raises(BackendUnavailable, match=server.url):
                backend.send(new("cut off"), CrashingRecipients())
            assert time.perf_counter() - started < 5
            server.start()  # back with what it had acknowledged
            assert [backend.count(u.pk) for u in users] == [1, 0, 0]
            assert backend.purge()["messages"] == 0  # the send may still be running
            backend.send_timeout = 0
            assert backend.purge(dry_run=True)["messages"] == 1
            assert backend.purge()["messages"] == 1
            assert [backend.count(u.pk) for u in users] == [0, 0, 0]
            kinds = check_indexes(backend)
            assert "e" not in kinds and "m" not in kinds and "sending" not in kinds
        finally:
            server.stop()
            backend.close()

    def test_a_send_whose_redis_stops_answering_gives_up_within_one_timeout(self, users):
        server = RedisServer().start()
        timeout = 1.0
        backend = RedisBackend(url=server.url, socket_connect_timeout=0.5, socket_timeout=timeout)
        backend.chunk_size = 1

        class HangingRecipients(Recipients):
            def iter_ids(self, chunk_size=2000):
                yield [users[0].pk]
                server.process.send_signal(signal.SIGSTOP)  # alive, but answers nothing
                yield [users[1].pk]

        try:
            started = time.perf_counter()
            with pytest.raises(BackendUnavailable, match=server.url):
                backend.send(new("hung"), HangingRecipients())
            # Waiting once more to take the send back would double it; purge does that.
            assert time.perf_counter() - started < 1.7 * timeout
        finally:
            server.process.send_signal(signal.SIGCONT)
            server.stop()
            backend.close()

    def test_storage_renders_its_page_when_redis_is_down(self, client, user, settings, caplog):
        settings.PIGEONHOLE = {
            "BACKEND": "pigeonhole.backends.redis.RedisBackend",
            "OPTIONS": {"url": "redis://127.0.0.1:1/0", "socket_connect_timeout": 0.5},
        }
        client.force_login(user)
        client.post("/add/info/", {"messages": ["Transient still shows."]})
        response = client.get("/show/")
        assert response.status_code == 200
        assert "Transient still shows." in response.content.decode()
        assert "Could not read stored messages." in caplog.text

    def test_persistent_message_degrades_to_a_flash_one_when_asked_to(self, rf, user, settings):
        from django.contrib import messages
        from django.contrib.sessions.backends.db import SessionStore

        from pigeonhole.storage import PersistentStorage

        settings.PIGEONHOLE = {
            "BACKEND": "pigeonhole.backends.redis.RedisBackend",
            "OPTIONS": {"url": "redis://127.0.0.1:1/0", "socket_connect_timeout": 0.5},
        }
        request = rf.get("/")
        request.session = SessionStore()
        request.user = user
        request._messages = PersistentStorage(request)
        with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1:1"):
            pigeonhole.add_message(request, pigeonhole.PERSISTENT_INFO, "Lost?")
        # Django's own messages.add_message() does not hand fail_silently to the
        # storage, so only pigeonhole's can ask for this.
        pigeonhole.add_message(
            request, pigeonhole.PERSISTENT_INFO, "Shown once", fail_silently=True
        )
        assert [(str(m), m.level) for m in request._messages] == [("Shown once", messages.INFO)]


class TestApiOnRedis:
    """
    What the API does on Redis alone.

    The end-to-end API and storage suites (``tests/test_api.py``,
    ``tests/test_storage.py``) already run once per backend.
    """

    @pytest.fixture(autouse=True)
    def redis_settings(self, url, settings):
        prefix = unique_prefix("api")
        settings.PIGEONHOLE = {
            "BACKEND": "pigeonhole.backends.redis.RedisBackend",
            "OPTIONS": {"url": url, "key_prefix": prefix, "socket_connect_timeout": 2},
        }
        assert isinstance(get_backend(), RedisBackend)
        yield
        backend = get_backend()
        check_indexes(backend)
        backend.close()
        delete_keys(url, prefix)

    def test_in_a_transaction_writes_wait_for_the_commit_and_signals_follow_them(
        self, user, other_user, django_capture_on_commit_callbacks
    ):
        heard = []

        def listener(signal, **kwargs):
            heard.append((signal, texts(pigeonhole.inbox(user)), pigeonhole.unread_count(user)))

        signals.message_sent.connect(listener)
        signals.message_read.connect(listener)
        try:
            with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
                sent = pigeonhole.send([user, other_user], "hello")
                # Reserved, not yet written: the caller's own reads do not see it.
                assert sent.recipient_count == 2
                assert pigeonhole.inbox(user) == [] and heard == []
            assert heard == [(signals.message_sent, ["hello"], 1)]
            [entry] = pigeonhole.inbox(user)
            assert entry.message_id == sent.id
            with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
                assert pigeonhole.mark_read(user, entry) == 1
                assert pigeonhole.unread_count(user) == 1  # applied on commit
            assert heard[1:] == [(signals.message_read, [], 0)]
        finally:
            signals.message_sent.disconnect(listener)
            signals.message_read.disconnect(listener)

    def test_concurrent_requests_from_threads_share_one_pool(self, user):
        pigeonhole.send(user, "shared")
        errors = []

        def count():
            try:
                assert pigeonhole.unread_count(user) == 1
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=count) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []


class TestSentinel:
    """The store finds its primary through Redis Sentinel."""

    def test_calls_go_to_the_primary_the_sentinel_names(self, users, tmp_path):
        server = RedisServer().start()
        sentinel = RedisSentinel(server, tmp_path)
        try:
            sentinel.start()
            backend = RedisBackend(
                sentinels=[f"127.0.0.1:{sentinel.port}"],
                service_name=sentinel.service_name,
                socket_timeout=2,
            )
            try:
                backend.send(new("through Sentinel"), Recipients(ids=[u.pk for u in users]))
                assert [backend.count(u.pk) for u in users] == [1, 1, 1]
                direct = RedisBackend(url=server.url)
                assert texts(direct.list(users[0].pk)) == ["through Sentinel"]
                direct.close()
                assert repr(backend) == (
                    f"<RedisBackend sentinel://127.0.0.1:{sentinel.port}/mymaster "
                    "key_prefix='pigeonhole'>"
                )
                server.stop()
                with pytest.raises(BackendUnavailable, match="sentinel://"):
                    backend.count(users[0].pk)
            finally:
                backend.close()
        finally:
            sentinel.stop()
            server.stop()

    @pytest.mark.parametrize(
        "options, message",
        [
            ({"sentinels": ["127.0.0.1:26379"]}, "service_name"),
            ({"sentinels": "127.0.0.1:26379", "service_name": "m"}, "not a list"),
            ({"sentinels": ["127.0.0.1"], "service_name": "m"}, "not a list"),
            (
                {"url": "redis://h/0", "sentinels": ["h:26379"], "service_name": "m"},
                "both 'url' and Sentinel",
            ),
        ],
    )
    def test_bad_sentinel_options_are_refused_naming_the_fix(self, options, message):
        with pytest.raises(ImproperlyConfigured, match=message):
            RedisBackend(**options)
