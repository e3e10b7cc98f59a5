"""The database backend against the shared contract, on whichever database the run uses."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pigeonhole.backends.base import Recipients
from pigeonhole.backends.db import DatabaseBackend
from pigeonhole.models import InboxEntry, Message

from .contract import BackendContract, new, texts

pytestmark = pytest.mark.django_db


class TestDatabaseBackend(BackendContract):
    @pytest.fixture
    def backend(self):
        return DatabaseBackend()

    def test_small_batches_still_reach_everyone(self, users):
        backend = DatabaseBackend()
        backend.batch_size = 2
        sent = backend.send(new("batched"), Recipients(ids=[u.pk for u in users]))
        assert sent.recipient_count == 3
        assert all(backend.count(u.pk) == 1 for u in users)


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
        assert ("list", "default", "unread", 50, True) in built
        assert {key[0] for key in backend._statements.keys() - built.keys()} == {"mark_read"}

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
