"""The public API: sending, reading and changing messages without a request."""

import sys
import time
import types
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import AnonymousUser, Group
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages.storage import default_storage
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone

import pigeonhole
from pigeonhole import signals
from pigeonhole.backends.db import DatabaseBackend
from pigeonhole.conf import get_backend
from pigeonhole.exceptions import InvalidMessage, MessageNotFound, PersistenceUnavailable
from pigeonhole.models import InboxEntry, Message
from pigeonhole.validation import check_url

from .timing import expire_in_the_past, wait_until

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store")]


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol")


def texts(entries):
    return [str(entry) for entry in entries]


def moment_between():
    """Return a time strictly after what was sent so far and before what comes next."""
    time.sleep(0.005)
    moment = timezone.now()
    time.sleep(0.005)
    return moment


class TestSend:
    def test_send_to_one_user(self, user):
        sent = pigeonhole.send(user, "Hello", subject="Greeting", url="/hello/")
        assert sent.recipient_count == 1
        [entry] = pigeonhole.inbox(user)
        assert (str(entry), entry.subject, entry.url, entry.level) == (
            "Hello",
            "Greeting",
            "/hello/",
            pigeonhole.INFO,
        )
        assert entry.message_id == sent.id and not entry.is_read

    def test_send_to_a_group_shares_one_content_record(self, group, user, other_user):
        sent = pigeonhole.send(group, "Staff meeting")
        assert sent.recipient_count == 2
        mine, theirs = pigeonhole.inbox(user)[0], pigeonhole.inbox(other_user)[0]
        assert mine.message_id == theirs.message_id == sent.id
        assert mine.id != theirs.id
        assert texts([mine, theirs]) == ["Staff meeting", "Staff meeting"]

    @pytest.mark.db_only
    def test_send_to_a_group_writes_content_once(self, group, user, other_user):
        sent = pigeonhole.send(group, "Staff meeting")
        assert Message.objects.count() == 1
        assert InboxEntry.objects.filter(message=sent).count() == 2

    def test_send_to_overlapping_groups_and_users_reaches_each_person_once(
        self, group, user, other_user, carol
    ):
        others = Group.objects.create(name="others")
        others.user_set.add(other_user, carol)
        sent = pigeonhole.send([group, others, user], "Once each")
        assert sent.recipient_count == 3
        assert pigeonhole.unread_count(other_user) == 1

    @pytest.mark.parametrize("thread", [None, "t"], ids=["plain", "threaded"])
    def test_send_to_a_query_that_matches_no_one_reaches_no_one(
        self, store, user, django_user_model, thread
    ):
        """
        ``pk__in=[]`` or ``none()``: Django refuses to write such a query at
        all, and the send failed with ``EmptyResultSet``, a 500 in a view
        that notifies whoever a filter found.
        """
        nobody = (
            django_user_model.objects.filter(pk__in=[]),
            django_user_model.objects.none(),
            Group.objects.filter(pk__in=[]),
        )
        for recipients in nobody:
            assert pigeonhole.send(recipients, "No one", thread=thread).recipient_count == 0
        assert pigeonhole.send(user, "Someone", thread=thread).recipient_count == 1
        assert texts(pigeonhole.inbox(user)) == ["Someone"]

    def test_send_to_querysets_of_users_and_groups(
        self, group, user, other_user, carol, django_user_model
    ):
        assert pigeonhole.send(django_user_model.objects.all(), "All").recipient_count == 3
        assert pigeonhole.send(Group.objects.filter(name="staff"), "Staff").recipient_count == 2
        assert pigeonhole.unread_count(carol) == 1

    @pytest.mark.parametrize("form", ["group", "groups", "group queryset", "groups and a user"])
    def test_groups_are_read_from_the_membership_table_alone(
        self, form, group, user, other_user, carol
    ):
        # pk IN (members) cannot repeat a user, so no store has to join the users
        # table with itself or sort the members to make them distinct.
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        others = Group.objects.create(name="others")
        others.user_set.add(other_user, carol)
        to = {
            "group": group,
            "groups": [group, others],
            "group queryset": Group.objects.filter(name__in=["staff", "others"]),
            "groups and a user": [others, user],
        }[form]
        with CaptureQueriesContext(connection) as captured:
            sent = pigeonhole.send(to, "Members")
        reads = [q["sql"] for q in captured.captured_queries if "_groups" in q["sql"]]
        assert sent.recipient_count == (2 if form == "group" else 3)
        assert reads and not [sql for sql in reads if " JOIN " in sql or "DISTINCT" in sql]

    def test_send_to_a_sliced_queryset(self, user, other_user, django_user_model):
        sent = pigeonhole.send(django_user_model.objects.order_by("username")[:1], "First")
        assert sent.recipient_count == 1
        assert pigeonhole.unread_count(user) == 1

    def test_duplicate_users_in_a_list_get_one_entry(self, user):
        assert pigeonhole.send([user, user], "Once").recipient_count == 1

    def test_send_stores_every_option(self, user, other_user, group):
        expires = timezone.now() + timedelta(days=1)
        sent = pigeonhole.send(
            user,
            "All options",
            level=pigeonhole.WARNING,
            subject="Subject",
            from_user=other_user,
            url="https://example.com/x",
            data={"order": 42},
            target=group,
            extra_tags=["billing", "urgent"],
            expires=expires,
            email=True,
            close_timeout=5,
        )
        [entry] = pigeonhole.inbox(user)
        assert entry.from_user_id == other_user.pk
        assert entry.data == {"order": 42}
        assert entry.extra_tags == "billing urgent"
        assert entry.tags == "billing urgent warning persistent"
        assert entry.expires == expires
        assert entry.close_timeout == 5
        assert entry.message_id == sent.id
        assert (entry.target_content_type_id, entry.target_object_id) == (
            ContentType.objects.get_for_model(Group).pk,
            str(group.pk),
        )

    def test_rolled_back_send_leaves_nothing_and_signals_nothing(
        self, user, store, django_capture_on_commit_callbacks
    ):
        received = []

        def listener(**kwargs):
            received.append(kwargs)

        signals.message_sent.connect(listener)
        try:
            with (
                django_capture_on_commit_callbacks(execute=True),
                pytest.raises(RuntimeError),
                transaction.atomic(),
            ):
                pigeonhole.send(user, "Never")
                raise RuntimeError
            assert pigeonhole.inbox(user) == []
            assert received == []
            with django_capture_on_commit_callbacks(execute=True):
                pigeonhole.send(user, "Sent")
            assert [kw["message"].recipient_count for kw in received] == [1]
            assert list(received[0]["recipients"].iter_ids()) == [[user.pk]]
        finally:
            # Only this test's receiver: the app's own (the broker's) must stay.
            signals.message_sent.disconnect(listener)

    @pytest.mark.db_only
    def test_failure_in_a_later_batch_leaves_no_half_sent_message(
        self, user, other_user, carol, settings, monkeypatch
    ):
        class FailingBackend(DatabaseBackend):
            batch_size = array_batch_size = 1
            calls = 0

            def _insert_select(self, *args, **kwargs):
                type(self).calls += 1
                if self.calls == 2:
                    raise RuntimeError("database went away")
                return super()._insert_select(*args, **kwargs)

        module = types.ModuleType("failing_backend")
        module.FailingBackend = FailingBackend
        monkeypatch.setitem(sys.modules, "failing_backend", module)
        settings.PIGEONHOLE = {"BACKEND": "failing_backend.FailingBackend"}
        with pytest.raises(RuntimeError, match="went away"):
            pigeonhole.send([user, other_user, carol], "Half?")
        assert FailingBackend.calls == 2
        assert Message.objects.count() == 0
        assert InboxEntry.objects.count() == 0


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"message": ""}, "empty"),
            ({"message": "   "}, "empty"),
            ({"message": "x" * 10_001}, "MAX_LENGTH"),
            ({"message": 42}, "text"),
            ({"level": "info"}, "integer"),
            ({"level": True}, "integer"),
            ({"url": "javascript:alert(1)"}, "http"),
            ({"url": "//evil.example/"}, "http"),
            ({"data": {"when": timezone.now()}}, "JSON"),
            ({"expires": timezone.now() - timedelta(seconds=1)}, "past"),
            ({"extra_tags": ["two words"]}, "single words"),
            ({"close_timeout": 0}, "positive"),
            ({"subject": "s" * 256}, "subject"),
        ],
    )
    def test_bad_input_raises_invalid_message_naming_the_fix(self, user, kwargs, match):
        options = {"message": "ok", **kwargs}
        message = options.pop("message")
        with pytest.raises(InvalidMessage, match=match):
            pigeonhole.send(user, message, **options)
        assert Message.objects.count() == 0

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"message": "before\x00after"},
            {"message": "lone \ud800 surrogate"},
            {"subject": "a\x00b"},
            {"extra_tags": "billing a\x00b"},
            {"extra_tags": ["ok", "a\x00b"]},
            {"url": "/path/\udfff/"},
            {"data": "\x00"},
            {"data": {"key": "a\x00b"}},
            {"data": {"a\x00b": 1}},
            {"data": {"key": [1, {"deep": ["fine", "a\x00b"]}]}},
            {"data": {"key": ["\udc80"]}},
        ],
    )
    def test_text_no_store_keeps_is_refused_before_anything_is_written(self, user, kwargs):
        options = {"message": "ok", **kwargs}
        message = options.pop("message")
        with pytest.raises(InvalidMessage, match=r"NUL character|unpaired surrogate"):
            pigeonhole.send(user, message, **options)
        assert pigeonhole.inbox(user, state="all") == []
        assert Message.objects.count() == 0

    def test_data_may_hold_any_other_text(self, user):
        data = {"key": ["tab\t", "newline\n", "\\u0000", "emoji \U0001f426"], "\x01": None}
        pigeonhole.send(user, "ok", data=data)
        assert pigeonhole.inbox(user)[0].data == data

    def test_max_length_setting_is_honoured(self, user, settings):
        settings.PIGEONHOLE = {**settings.PIGEONHOLE, "MAX_LENGTH": 5}
        with pytest.raises(InvalidMessage, match="more than the 5 allowed"):
            pigeonhole.send(user, "too long")
        assert pigeonhole.send(user, "short").recipient_count == 1

    @pytest.mark.parametrize("to", [None, [], "alice", 7, AnonymousUser()])
    def test_bad_recipients_are_refused(self, user, to):
        with pytest.raises(InvalidMessage):
            pigeonhole.send(to, "Hello")

    def test_unsaved_user_is_refused(self, django_user_model):
        with pytest.raises(InvalidMessage, match="saved"):
            pigeonhole.send(django_user_model(username="ghost"), "Hello")

    def test_a_list_with_one_unsaved_or_anonymous_user_is_refused_whole(
        self, user, other_user, django_user_model
    ):
        ghost = django_user_model(username="ghost")
        for odd, match in ((ghost, "not been saved"), (AnonymousUser(), "anonymous")):
            with pytest.raises(InvalidMessage, match=match):
                pigeonhole.send([user, odd, other_user], "Hello")
        assert pigeonhole.unread_count(user) == pigeonhole.unread_count(other_user) == 0

    def test_invalid_message_is_a_value_error(self):
        assert issubclass(InvalidMessage, ValueError)


# Links a browser would follow to another host: it reads "\\" as "/", drops leading
# spaces and control characters, and ignores tabs and newlines anywhere.
OTHER_HOST_URLS = [
    "//evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "\\/evil.example/",
    "/\\/evil.example/",
    "\\\\\\evil.example/",
    " //evil.example/",
    "\x00/\\evil.example/",
    "\t/\\evil.example/",
    "/\t/evil.example/",
    "/\n\\evil.example/",
    " javascript:alert(1)",
]


@pytest.mark.parametrize("url", OTHER_HOST_URLS)
def test_check_url_refuses_links_to_another_host(url):
    with pytest.raises(InvalidMessage, match="path such as"):
        check_url(url)


@pytest.mark.parametrize(
    "url", ["/orders/42/", "/a\\b/", "/?next=//x", "https://example.com/", "HTTP://example.com"]
)
def test_check_url_accepts_paths_and_http_urls(url):
    assert check_url(url) == url


def nested(depth, leaf=1):
    """``leaf`` inside ``depth`` lists: ``nested(2)`` is ``[[1]]``."""
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def by_send(user, other_user, **options):
    return pigeonhole.send(other_user, "hi", **options)


def by_add_message(user, other_user, **options):
    request = RequestFactory().get("/")
    request.user = user
    request.session = SessionStore()
    request._messages = default_storage(request)
    return pigeonhole.add_message(request, pigeonhole.PERSISTENT_INFO, "hi", **options)


def by_reply(user, other_user, **options):
    pigeonhole.send(user, "question", from_user=other_user)
    return pigeonhole.reply(user, pigeonhole.inbox(user)[0], "answer", **options)


@pytest.mark.parametrize("sender", [by_send, by_add_message, by_reply])
class TestDataLimits:
    """``data`` is bounded in size and depth whichever function stores it."""

    def test_data_up_to_the_limits_is_stored(self, user, other_user, sender):
        # The default limits: 8192 bytes of compact JSON, 20 levels of nesting.
        fits = {"blob": "x" * (8192 - len('{"blob":""}'))}
        assert sender(user, other_user, data=fits) is not None
        assert sender(user, other_user, data=nested(20)) is not None

    def test_data_over_max_data_bytes_is_refused(self, user, other_user, sender):
        blob = {"blob": "x" * (8193 - len('{"blob":""}'))}
        with pytest.raises(InvalidMessage, match=r"8193 bytes.*8192.*MAX_DATA_BYTES"):
            sender(user, other_user, data=blob)
        # Bytes, not characters: each "é" is two of them.
        with pytest.raises(InvalidMessage, match="MAX_DATA_BYTES"):
            sender(user, other_user, data="é" * 4096)
        assert not Message.objects.exclude(message="question").exists()

    def test_data_over_max_data_depth_is_refused(self, user, other_user, sender):
        for depth in (21, 900, 5000):
            with pytest.raises(InvalidMessage, match=r"more than 20 levels.*MAX_DATA_DEPTH"):
                sender(user, other_user, data={"deep": nested(depth - 1)})
        assert not Message.objects.exclude(message="question").exists()

    def test_limits_follow_the_settings(self, user, other_user, sender, settings):
        settings.PIGEONHOLE = {**settings.PIGEONHOLE, "MAX_DATA_BYTES": 10, "MAX_DATA_DEPTH": 2}
        with pytest.raises(InvalidMessage, match="more than the 10 allowed"):
            sender(user, other_user, data="x" * 9)
        with pytest.raises(InvalidMessage, match="more than 2 levels"):
            sender(user, other_user, data=nested(3))
        assert sender(user, other_user, data=[[1]]) is not None

    @pytest.mark.parametrize("data", [{"x": float("inf")}, [float("-inf")], float("nan")])
    def test_non_finite_numbers_are_refused(self, user, other_user, sender, data):
        with pytest.raises(InvalidMessage, match="JSON"):
            sender(user, other_user, data=data)


class TestInbox:
    def test_newest_first_with_keyset_paging(self, user):
        for i in range(7):
            pigeonhole.send(user, f"m{i}")
        first = pigeonhole.inbox(user, limit=3)
        second = pigeonhole.inbox(user, limit=3, after=first[-1].id)
        third = pigeonhole.inbox(user, limit=3, after=second[-1].id)
        assert texts(first + second + third) == [f"m{i}" for i in range(6, -1, -1)]

    def test_states(self, user):
        for name in ("a", "b", "c"):
            pigeonhole.send(user, name)
        a, b, _ = sorted(pigeonhole.inbox(user), key=lambda m: str(m))
        pigeonhole.mark_read(user, a)
        pigeonhole.archive(user, b)
        assert texts(pigeonhole.inbox(user, state="unread")) == ["c"]
        assert texts(pigeonhole.inbox(user, state="read")) == ["a"]
        assert texts(pigeonhole.inbox(user, state="all")) == ["c", "a"]
        assert texts(pigeonhole.inbox(user, state="archived")) == ["b"]
        assert pigeonhole.unread_count(user) == 1  # archived unread is not counted
        pigeonhole.unarchive(user, b)
        assert pigeonhole.unread_count(user) == 2

    def test_filter_by_level_includes_persistent_variant(self, user):
        pigeonhole.send(user, "plain", level=pigeonhole.INFO)
        pigeonhole.send(user, "persistent", level=pigeonhole.PERSISTENT_INFO)
        pigeonhole.send(user, "error", level=pigeonhole.ERROR)
        assert texts(pigeonhole.inbox(user, level=pigeonhole.INFO)) == ["persistent", "plain"]

    def test_filter_by_tag_matches_whole_words(self, user):
        pigeonhole.send(user, "a", extra_tags="billing")
        pigeonhole.send(user, "b", extra_tags="urgent billing-old")
        pigeonhole.send(user, "c", extra_tags=["x", "billing", "y"])
        assert texts(pigeonhole.inbox(user, tag="billing")) == ["c", "a"]

    def test_filter_by_creation_time(self, user):
        pigeonhole.send(user, "old")
        cutoff = moment_between()
        pigeonhole.send(user, "new")
        assert texts(pigeonhole.inbox(user, since=cutoff)) == ["new"]
        assert texts(pigeonhole.inbox(user, before=cutoff)) == ["old"]

    def test_anonymous_user_has_empty_inbox(self):
        assert pigeonhole.inbox(AnonymousUser()) == []
        assert pigeonhole.unread_count(AnonymousUser()) == 0

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"state": "new"},
            {"limit": 0},
            {"limit": 1001},
            {"after": "x"},
            {"tag": "a b"},
            {"tag": "a\x00b"},
        ],
    )
    def test_bad_arguments_are_refused(self, user, kwargs):
        with pytest.raises(InvalidMessage):
            pigeonhole.inbox(user, **kwargs)


class TestReadingOne:
    def test_get_returns_one_of_the_users_messages_by_id_or_message(self, user):
        pigeonhole.send(user, "Hello", subject="Hi")
        entry = pigeonhole.inbox(user)[0]
        assert pigeonhole.get(user, entry.id) == entry
        assert pigeonhole.get(user, entry).subject == "Hi"
        assert async_to_sync(pigeonhole.aget)(user, entry.id) == entry

    def test_get_of_another_users_message_raises_or_with_strict_false_returns_none(
        self, user, other_user
    ):
        pigeonhole.send(user, "mine")
        entry = pigeonhole.inbox(user)[0]
        with pytest.raises(MessageNotFound):
            pigeonhole.get(other_user, entry.id)
        assert pigeonhole.get(other_user, entry.id, strict=False) is None
        assert pigeonhole.get(user, entry.id, strict=False) == entry

    def test_get_refuses_anonymous_users_and_ids_that_are_not_ids(self, user):
        with pytest.raises(PersistenceUnavailable):
            pigeonhole.get(AnonymousUser(), 1)
        with pytest.raises(InvalidMessage):
            pigeonhole.get(user, "x")

    def test_inbox_state_holds_the_unread_count_and_highest_unread_level(self, user):
        pigeonhole.send(user, "info", level=pigeonhole.INFO)
        pigeonhole.send(user, "warning", level=pigeonhole.WARNING)
        pigeonhole.send(user, "error", level=pigeonhole.ERROR)
        pigeonhole.mark_read(user, pigeonhole.inbox(user)[0])
        state = pigeonhole.inbox_state(user)
        assert (state.unread, state.max_level) == (2, pigeonhole.WARNING)
        assert async_to_sync(pigeonhole.ainbox_state)(user) == state

    def test_inbox_state_of_an_anonymous_user_is_empty_and_unversioned(self):
        state = pigeonhole.inbox_state(AnonymousUser())
        assert (state.unread, state.unseen, state.max_level, state.version) == (0, 0, None, None)


class TestChangingState:
    def test_mark_read_and_unread_return_how_many_changed(self, user):
        pigeonhole.send(user, "a")
        pigeonhole.send(user, "b")
        ids = [m.id for m in pigeonhole.inbox(user)]
        assert pigeonhole.mark_read(user, ids) == 2
        assert pigeonhole.mark_read(user, ids) == 0
        assert pigeonhole.mark_unread(user, ids[0]) == 1
        assert pigeonhole.unread_count(user) == 1

    def test_ids_of_another_user_are_not_found_and_nothing_changes(self, user, other_user):
        pigeonhole.send(user, "mine")
        pigeonhole.send(other_user, "theirs")
        [mine] = pigeonhole.inbox(user)
        [theirs] = pigeonhole.inbox(other_user)
        for action in (
            pigeonhole.mark_read,
            pigeonhole.mark_unread,
            pigeonhole.archive,
            pigeonhole.unarchive,
            pigeonhole.delete,
        ):
            with pytest.raises(MessageNotFound):
                action(user, [mine.id, theirs.id])
        assert pigeonhole.unread_count(user) == 1
        assert pigeonhole.unread_count(other_user) == 1

    def test_unknown_id_raises_message_not_found(self, user):
        with pytest.raises(MessageNotFound, match="999999"):
            pigeonhole.mark_read(user, 999999)

    def test_mark_all_read_keeps_later_messages_unread(self, user):
        for i in range(3):
            pigeonhole.send(user, f"seen {i}")
        newest_seen = pigeonhole.inbox(user)[0].id
        pigeonhole.send(user, "arrived later")
        assert pigeonhole.mark_all_read(user, before=newest_seen) == 3
        assert texts(pigeonhole.inbox(user)) == ["arrived later"]

    def test_mark_all_read_with_a_datetime_watermark(self, user):
        pigeonhole.send(user, "old")
        watermark = moment_between()
        pigeonhole.send(user, "new")
        assert pigeonhole.mark_all_read(user, before=watermark) == 1
        assert texts(pigeonhole.inbox(user)) == ["new"]

    def test_mark_all_read_leaves_archived_entries_alone(self, user):
        pigeonhole.send(user, "archived unread")
        pigeonhole.archive(user, pigeonhole.inbox(user))
        pigeonhole.send(user, "inbox")
        assert pigeonhole.mark_all_read(user) == 1
        assert pigeonhole.inbox(user, state="archived")[0].is_read is False

    def test_mark_all_read_refuses_a_naive_watermark(self, user):
        from datetime import datetime

        with pytest.raises(InvalidMessage, match="aware"):
            pigeonhole.mark_all_read(user, before=datetime(2026, 1, 1))

    def test_watermarks_with_any_utc_offset_python_allows(self, user):
        # PostgreSQL refuses offsets of 16 hours and more; Python allows up to 24.
        from datetime import datetime
        from datetime import timezone as tz

        pigeonhole.send(user, "old")
        watermark = moment_between().astimezone(tz(timedelta(hours=23, minutes=59)))
        pigeonhole.send(user, "new")
        assert texts(pigeonhole.inbox(user, since=watermark)) == ["new"]
        assert texts(pigeonhole.inbox(user, before=watermark)) == ["old"]
        assert pigeonhole.mark_all_read(user, before=watermark) == 1
        assert texts(pigeonhole.inbox(user)) == ["new"]
        far_east = datetime(1, 1, 1, tzinfo=tz(timedelta(hours=5)))  # before year 1 in UTC
        with pytest.raises(InvalidMessage, match="out of range once converted to UTC"):
            pigeonhole.mark_all_read(user, before=far_east)

    def test_send_signal_carries_the_content_record_from_every_path(
        self, rf, user, django_capture_on_commit_callbacks
    ):
        from django.contrib.sessions.backends.db import SessionStore

        from pigeonhole.storage import PersistentStorage

        heard = []

        def listener(**kwargs):
            heard.append((kwargs["message"].id, kwargs["message"].recipient_count))

        signals.message_sent.connect(listener)
        request = rf.get("/")
        request.session, request.user = SessionStore(), user
        request._messages = PersistentStorage(request)
        try:
            with django_capture_on_commit_callbacks(execute=True):
                sent = pigeonhole.send(user, "via send")
                stored = pigeonhole.info(request, "via request")
        finally:
            signals.message_sent.disconnect(listener)
        assert heard == [(sent.id, 1), (stored.message_id, 1)]

    def test_mark_all_read_without_watermark_marks_everything(self, user, other_user):
        pigeonhole.send([user, other_user], "x")
        pigeonhole.send(user, "y")
        assert pigeonhole.mark_all_read(user) == 2
        assert pigeonhole.unread_count(user) == 0
        assert pigeonhole.unread_count(other_user) == 1

    def test_every_change_skips_foreign_ids_with_strict_false(self, user, other_user):
        pigeonhole.send([user, other_user], "both")
        [mine], [theirs] = pigeonhole.inbox(user), pigeonhole.inbox(other_user)
        ids = [mine.id, theirs.id]
        with pytest.raises(MessageNotFound):
            pigeonhole.archive(user, ids)
        assert pigeonhole.mark_read(user, ids, strict=False) == 1
        assert pigeonhole.mark_unread(user, ids, strict=False) == 1
        assert pigeonhole.archive(user, ids, strict=False) == 1
        assert pigeonhole.unarchive(user, ids, strict=False) == 1
        pigeonhole.mark_read(user, mine)
        assert pigeonhole.delete(user, ids, strict=False) == 1
        assert pigeonhole.inbox(user, state="all") == []
        assert pigeonhole.inbox(other_user) == [theirs]

    def test_delete_refuses_unread_unless_allowed(self, user, settings):
        pigeonhole.send(user, "unread")
        [entry] = pigeonhole.inbox(user)
        with pytest.raises(InvalidMessage, match="ALLOW_DELETE_UNREAD"):
            pigeonhole.delete(user, entry)
        pigeonhole.mark_read(user, entry)
        assert pigeonhole.delete(user, entry) == 1
        assert pigeonhole.inbox(user, state="all") == []
        pigeonhole.send(user, "unread again")
        settings.PIGEONHOLE = {**settings.PIGEONHOLE, "ALLOW_DELETE_UNREAD": True}
        assert pigeonhole.delete(user, pigeonhole.inbox(user)) == 1

    def test_anonymous_user_cannot_change_anything(self):
        with pytest.raises(PersistenceUnavailable):
            pigeonhole.mark_read(AnonymousUser(), 1)

    def test_state_signals_fire_after_commit_with_ids(
        self, user, django_capture_on_commit_callbacks
    ):
        heard = []

        def listener(signal, **kwargs):
            heard.append((signal, kwargs["user"], kwargs["ids"]))

        pigeonhole.send(user, "x")
        [entry] = pigeonhole.inbox(user)
        for signal in (signals.message_read, signals.message_archived, signals.message_deleted):
            signal.connect(listener)
        try:
            with django_capture_on_commit_callbacks(execute=False) as callbacks:
                pigeonhole.mark_read(user, entry)
                pigeonhole.archive(user, entry)
                pigeonhole.delete(user, entry)
            assert heard == []  # nothing before commit
            for callback in callbacks:
                callback()
            assert heard == [
                (signals.message_read, user, [entry.id]),
                (signals.message_archived, user, [entry.id]),
                (signals.message_deleted, user, [entry.id]),
            ]
        finally:
            for signal in (signals.message_read, signals.message_archived, signals.message_deleted):
                signal.disconnect(listener)


class TestExpiry:
    def test_expired_messages_are_invisible_and_purged(self, user):
        pigeonhole.send(user, "soon gone", expires=timedelta(hours=1))
        [expiring] = pigeonhole.inbox(user)
        pigeonhole.send(user, "stays")
        expire_in_the_past(user, [expiring])
        assert texts(pigeonhole.inbox(user, state="all")) == ["stays"]
        assert pigeonhole.unread_count(user) == 1
        with pytest.raises(MessageNotFound):
            pigeonhole.mark_read(user, expiring)
        counts = get_backend().purge(expired=True)
        assert counts == {"expired": 1, "read": 0, "messages": 1}
        assert get_backend().purge(expired=True) == {"expired": 0, "read": 0, "messages": 0}
        assert texts(pigeonhole.inbox(user, state="all")) == ["stays"]

    def test_a_message_disappears_once_its_expiry_passes(self, user):
        """On the real clock: a second to live, and up to thirty to see it gone."""
        pigeonhole.send(user, "soon gone", expires=timedelta(seconds=1))
        pigeonhole.send(user, "stays")
        wait_until(lambda: texts(pigeonhole.inbox(user, state="all")) == ["stays"])
        assert pigeonhole.unread_count(user) == 1
        assert get_backend().purge(expired=True) == {"expired": 1, "read": 0, "messages": 1}

    @pytest.mark.db_only
    def test_purge_deletes_the_content_of_expired_messages(self, user):
        pigeonhole.send(user, "soon gone", expires=timedelta(hours=1))
        pigeonhole.send(user, "stays")
        expire_in_the_past(user, pigeonhole.inbox(user)[1:])
        get_backend().purge(expired=True)
        assert list(Message.objects.values_list("message", flat=True)) == ["stays"]


class TestReply:
    def test_reply_goes_to_the_sender_linked_to_the_original(self, user, other_user):
        original = pigeonhole.send(user, "Can you review?", from_user=other_user, subject="PR")
        [entry] = pigeonhole.inbox(user)
        reply = pigeonhole.reply(user, entry, "Done.")
        [received] = pigeonhole.inbox(other_user)
        assert (str(received), received.subject, received.from_user_id) == (
            "Done.",
            "Re: PR",
            user.pk,
        )
        assert received.in_reply_to_id == original.id
        assert received.message_id == reply.id

    def test_reply_to_a_message_without_sender_is_refused(self, user):
        pigeonhole.send(user, "System notice")
        with pytest.raises(InvalidMessage, match="no sender"):
            pigeonhole.reply(user, pigeonhole.inbox(user)[0], "Thanks")

    def test_reply_to_someone_elses_entry_is_not_found(self, user, other_user):
        pigeonhole.send(other_user, "private", from_user=user)
        with pytest.raises(MessageNotFound):
            pigeonhole.reply(user, pigeonhole.inbox(other_user)[0], "peek")


class TestAsync:
    def test_async_twins(self, user):
        async def scenario():
            sent = await pigeonhole.asend(user, "async hello")
            assert sent.recipient_count == 1
            assert await pigeonhole.aunread_count(user) == 1
            [entry] = await pigeonhole.ainbox(user)
            assert await pigeonhole.amark_read(user, entry) == 1
            assert await pigeonhole.amark_all_read(user) == 0
            return await pigeonhole.aunread_count(user)

        assert async_to_sync(scenario)() == 0


class TestDeletedUsers:
    def test_deleting_a_user_deletes_their_messages_in_any_store(
        self, user, other_user, django_capture_on_commit_callbacks
    ):
        pigeonhole.send([user, other_user], "Both")
        pigeonhole.send(user, "Only alice")
        user_id = user.pk
        with django_capture_on_commit_callbacks(execute=True):
            user.delete()
        assert get_backend().list(user_id, state="all") == []
        assert get_backend().count(user_id) == 0
        assert texts(pigeonhole.inbox(other_user)) == ["Both"]

    def test_a_rolled_back_deletion_keeps_the_messages(
        self, user, django_user_model, django_capture_on_commit_callbacks
    ):
        pigeonhole.send(user, "Still here")
        user_id = user.pk
        with (
            django_capture_on_commit_callbacks(execute=True),
            pytest.raises(RuntimeError),
            transaction.atomic(),
        ):
            user.delete()
            raise RuntimeError
        restored = django_user_model.objects.get(pk=user_id)
        assert texts(pigeonhole.inbox(restored)) == ["Still here"]
