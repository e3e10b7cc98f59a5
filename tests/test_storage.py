"""PersistentStorage end to end: the real middleware stack, a real database."""

import pytest
from django.contrib import messages
from django.contrib.messages import get_messages
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.http import HttpResponse
from django.template import engines
from django.test.utils import CaptureQueriesContext

import pigeonhole
from pigeonhole.exceptions import InvalidMessage, PersistenceUnavailable
from pigeonhole.storage import PersistentStorage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store")]


def pigeonhole_queries(captured):
    return [q["sql"] for q in captured.captured_queries if "pigeonhole_" in q["sql"]]


@pytest.fixture
def alice_client(client, user):
    client.force_login(user)
    return client


def make_storage(rf, user=None):
    request = rf.get("/")
    request.session = SessionStore()
    if user is not None:
        request.user = user
    request._messages = PersistentStorage(request)
    return request._messages


def shown(response):
    return [line.strip() for line in response.content.decode().splitlines() if line.strip()]


class TestTransientMessages:
    def test_plain_info_is_shown_once_like_django(self, alice_client):
        alice_client.post("/add/info/", {"messages": ["Saved."]})
        assert shown(alice_client.get("/show/")) == ['<li class="info">Saved.</li>']
        assert shown(alice_client.get("/show/")) == []

    def test_plain_message_added_and_shown_on_one_request_is_not_shown_again(self, alice_client):
        assert shown(alice_client.get("/show/?add=Opened.")) == ['<li class="success">Opened.</li>']
        assert shown(alice_client.get("/show/")) == []

    def test_alerts_without_stored_messages_show_a_plain_message_once(self, alice_client, user):
        pigeonhole.send(user, "Stored one")
        page = alice_client.get("/show/?alerts=flash&add=Opened.").content.decode()
        assert page.count(">Opened.<") == 1 and "Stored one" not in page
        again = alice_client.get("/show/?alerts=flash").content.decode()
        assert "Opened." not in again and "Stored one" not in again
        assert pigeonhole.unread_count(user) == 1  # left for the inbox page
        assert shown(alice_client.get("/show/")) == ['<li class="info persistent">Stored one</li>']

    def test_all_alerts_show_a_plain_message_once_and_mark_stored_ones_read(
        self, alice_client, user
    ):
        pigeonhole.send(user, "Stored one")
        page = alice_client.get("/show/?alerts=all&add=Opened.").content.decode()
        assert page.count(">Opened.<") == 1 and page.count(">Stored one<") == 1
        assert "pigeonhole-alert" not in alice_client.get("/show/?alerts=all").content.decode()
        assert pigeonhole.unread_count(user) == 0

    def test_alerts_show_a_message_added_before_the_redirect_once(self, alice_client):
        alice_client.post("/add/info/", {"messages": ["Saved."]})
        assert "Saved." in alice_client.get("/show/?alerts=flash").content.decode()
        assert "Saved." not in alice_client.get("/show/?alerts=flash").content.decode()

    def test_plain_info_is_not_stored(self, alice_client, user):
        alice_client.post("/add/info/", {"messages": ["Saved."]})
        assert pigeonhole.unread_count(user) == 0


class TestPersistentMessages:
    def test_persistent_message_is_shown_then_marked_read(self, alice_client, user):
        alice_client.post("/add/persistent/", {"messages": ["Your export is ready."]})
        assert pigeonhole.unread_count(user) == 1
        assert shown(alice_client.get("/show/")) == [
            '<li class="info persistent">Your export is ready.</li>'
        ]
        assert shown(alice_client.get("/show/")) == []
        [entry] = pigeonhole.inbox(user, state="all")
        assert entry.is_read and str(entry) == "Your export is ready."

    def test_persistent_message_survives_logout_and_login(self, client, user):
        client.force_login(user)
        client.post("/add/persistent_error/", {"messages": ["Payment failed."]})
        client.logout()
        assert shown(client.get("/show/")) == []  # not shown to the anonymous visitor
        client.force_login(user)
        assert shown(client.get("/show/")) == ['<li class="error persistent">Payment failed.</li>']

    def test_used_false_keeps_messages_unread(self, alice_client, user):
        alice_client.post("/add/persistent/", {"messages": ["Keep me."]})
        assert len(shown(alice_client.get("/show/?keep=1"))) == 1
        assert pigeonhole.unread_count(user) == 1
        assert len(shown(alice_client.get("/show/"))) == 1
        assert pigeonhole.unread_count(user) == 0

    def test_read_on_display_off_keeps_messages_until_marked_read(
        self, alice_client, user, settings
    ):
        settings.PIGEONHOLE = {**settings.PIGEONHOLE, "READ_ON_DISPLAY": False}
        alice_client.post("/add/persistent/", {"messages": ["Until you click."]})
        alice_client.get("/show/")
        assert len(shown(alice_client.get("/show/"))) == 1
        [entry] = pigeonhole.inbox(user)
        pigeonhole.mark_read(user, entry)
        assert shown(alice_client.get("/show/")) == []

    def test_delete_read_removes_displayed_messages(self, alice_client, user, settings):
        settings.PIGEONHOLE = {**settings.PIGEONHOLE, "DELETE_READ": True}
        alice_client.post("/add/persistent/", {"messages": ["Gone once seen."]})
        alice_client.get("/show/")
        assert pigeonhole.inbox(user, state="all") == []

    def test_messages_of_one_user_never_reach_another(self, client, user, other_user):
        pigeonhole.send(user, "For Alice only", level=pigeonhole.PERSISTENT_INFO)
        client.force_login(other_user)
        assert shown(client.get("/show/")) == []
        assert pigeonhole.unread_count(user) == 1

    def test_message_sent_elsewhere_is_shown_on_next_page(self, alice_client, user):
        pigeonhole.send(user, "From a task", level=pigeonhole.WARNING)
        assert shown(alice_client.get("/show/")) == [
            '<li class="warning persistent">From a task</li>'
        ]

    def test_text_is_escaped_unless_marked_safe(self, alice_client, user):
        from django.utils.safestring import mark_safe

        pigeonhole.send(user, "<b>bold</b>")
        pigeonhole.send(user, mark_safe("<i>trusted</i>"))
        assert shown(alice_client.get("/show/")) == [
            '<li class="info persistent">&lt;b&gt;bold&lt;/b&gt;</li>',
            '<li class="info persistent"><i>trusted</i></li>',
        ]


class TestAnonymousUsers:
    def test_flash_policy_shows_persistent_level_once_as_plain_message(self, client):
        client.post("/add/persistent/", {"messages": ["Hello stranger"]})
        assert shown(client.get("/show/")) == ['<li class="info">Hello stranger</li>']
        assert shown(client.get("/show/")) == []

    def test_raise_policy_raises_persistence_unavailable(self, client, settings):
        settings.PIGEONHOLE = {**settings.PIGEONHOLE, "ANONYMOUS": "raise"}
        with pytest.raises(PersistenceUnavailable, match="anonymous"):
            client.post("/add/persistent/", {"messages": ["Hello stranger"]})
        assert issubclass(PersistenceUnavailable, NotImplementedError)


class TestStickyMessages:
    def test_sticky_message_stays_until_closed(self, alice_client):
        alice_client.post("/add/sticky/", {"messages": ["Maintenance tonight"]})
        for _ in range(2):
            assert shown(alice_client.get("/show/")) == [
                '<li class="warning sticky">Maintenance tonight</li>'
            ]
        sticky_id = pigeonhole.message.StickyMessage.content_id(
            pigeonhole.STICKY_WARNING, "Maintenance tonight", ""
        )
        response = alice_client.post(f"/messages/sticky/{sticky_id}/close/", {"next": "/show/"})
        assert response.status_code == 302
        assert shown(alice_client.get("/show/")) == []

    def test_closed_sticky_message_does_not_come_back_when_added_again(self, alice_client):
        alice_client.post("/add/sticky/", {"messages": ["Trial ends soon"]})
        sticky_id = pigeonhole.message.StickyMessage.content_id(
            pigeonhole.STICKY_WARNING, "Trial ends soon", ""
        )
        alice_client.post(f"/messages/sticky/{sticky_id}/close/")
        alice_client.post("/add/sticky/", {"messages": ["Trial ends soon"]})
        assert shown(alice_client.get("/show/")) == []

    def test_same_sticky_message_added_twice_is_shown_once(self, alice_client):
        alice_client.post("/add/sticky/", {"messages": ["Once", "Once"]})
        assert len(shown(alice_client.get("/show/"))) == 1

    def test_sticky_messages_are_never_stored(self, alice_client, user):
        alice_client.post("/add/sticky/", {"messages": ["Session only"]})
        assert pigeonhole.inbox(user, state="all") == []


@pytest.mark.db_only
class TestQueryCost:
    def test_request_that_never_touches_messages_costs_no_query(self, alice_client, user):
        pigeonhole.send(user, "Waiting", level=pigeonhole.PERSISTENT_INFO)
        with CaptureQueriesContext(connection) as captured:
            alice_client.get("/nothing/")
        assert pigeonhole_queries(captured) == []

    @pytest.mark.parametrize("inbox_size", [3, 150])
    def test_showing_messages_costs_one_statement(self, alice_client, user, inbox_size):
        for i in range(inbox_size):
            pigeonhole.send(user, f"Message {i}")
        with CaptureQueriesContext(connection) as captured:
            response = alice_client.get("/show/")
        verbs = [q.lstrip().split()[0].upper() for q in pigeonhole_queries(captured)]
        # One UPDATE ... RETURNING claims and reads the page; MariaDB has none.
        assert verbs == (["SELECT", "UPDATE"] if connection.vendor == "mysql" else ["UPDATE"])
        assert len(shown(response)) == min(inbox_size, PersistentStorage.display_limit)
        assert pigeonhole.unread_count(user) == max(0, inbox_size - PersistentStorage.display_limit)

    def test_adding_a_persistent_message_costs_one_round_trip_on_postgresql(self, rf, user):
        storage = make_storage(rf, user)
        with CaptureQueriesContext(connection) as captured:
            storage.add(pigeonhole.PERSISTENT_INFO, "Two rows")
        queries = pigeonhole_queries(captured)
        expected = ["WITH"] if connection.vendor == "postgresql" else ["INSERT", "INSERT"]
        assert [q.lstrip().split()[0].upper() for q in queries] == expected

    def test_messages_kept_with_used_false_cost_one_more_statement(self, alice_client, user):
        pigeonhole.send(user, "Keep me")
        with CaptureQueriesContext(connection) as captured:
            assert len(shown(alice_client.get("/show/?keep=1"))) == 1
        # The claim, then the UPDATE giving it back (MariaDB reads before each).
        assert len(pigeonhole_queries(captured)) == (4 if connection.vendor == "mysql" else 2)
        assert pigeonhole.unread_count(user) == 1

    def test_full_inbox_is_shown_one_page_at_a_time(self, alice_client, user):
        limit = PersistentStorage.display_limit
        for i in range(limit + 5):
            pigeonhole.send(user, f"Message {i}")
        assert len(shown(alice_client.get("/show/"))) == limit
        assert pigeonhole.unread_count(user) == 5
        # The oldest messages wait for the next page, oldest first.
        assert shown(alice_client.get("/show/"))[0] == '<li class="info persistent">Message 0</li>'


class TestStorageInterface:
    def test_len_index_slice_and_membership(self, rf, user):
        pigeonhole.send(user, "Stored one", level=pigeonhole.PERSISTENT_WARNING)
        storage = make_storage(rf, user)
        storage.add(messages.INFO, "Transient one")
        storage.add(pigeonhole.STICKY_ERROR, "Sticky one")
        assert len(storage) == 3
        assert [str(m) for m in storage[:]] == ["Sticky one", "Stored one", "Transient one"]
        assert str(storage[1]) == "Stored one"
        assert str(storage[-1]) == "Transient one"
        assert "Stored one" in storage
        assert "Nothing like it" not in storage
        assert pigeonhole.PERSISTENT_WARNING in storage
        assert messages.ERROR not in storage
        assert storage[1] in storage
        assert not storage.used  # looking is not displaying

    def test_template_helpers(self, rf, user):
        for i in range(3):
            pigeonhole.send(user, f"Stored {i}")
        storage = make_storage(rf, user)
        storage.add(messages.INFO, "Transient")
        assert storage.count_persistent_unread() == 3
        assert storage.count_unread() == 4
        assert [str(m) for m in storage.get_persistent_unread()] == [
            "Stored 0",
            "Stored 1",
            "Stored 2",
        ]
        assert [str(m) for m in storage.get_nonpersistent()] == ["Transient"]
        template = engines["django"].from_string(
            "{{ messages.count_unread }}/{{ messages.count_persistent_unread }}"
        )
        assert template.render({"messages": storage}) == "4/3"

    def test_get_persistent_includes_read_messages(self, rf, user):
        first = pigeonhole.send(user, "Old")
        pigeonhole.send(user, "New")
        pigeonhole.mark_read(user, pigeonhole.inbox(user, state="all")[-1])
        storage = make_storage(rf, user)
        assert [(str(m), m.is_read) for m in storage.get_persistent()] == [
            ("Old", True),
            ("New", False),
        ]
        assert first.recipient_count == 1

    def test_counted_but_never_iterated_messages_stay_unread(self, rf, user):
        pigeonhole.send(user, "Counted only")
        storage = make_storage(rf, user)
        assert len(storage) == 1
        storage.used = True  # as a tag that shows only the transient ones does
        storage.update(HttpResponse())
        assert pigeonhole.unread_count(user) == 1
        assert [str(m) for m in make_storage(rf, user)] == ["Counted only"]

    def test_a_badge_after_the_loop_counts_what_the_page_shows(self, rf, user):
        for i in range(2):
            pigeonhole.send(user, f"Stored {i}")
        storage = make_storage(rf, user)
        assert [str(m) for m in storage] == ["Stored 0", "Stored 1"]
        assert storage.count_persistent_unread() == 2  # unread until the response
        storage.update(HttpResponse())
        assert pigeonhole.unread_count(user) == 0

    def test_delete_read_deletes_what_the_loop_showed(self, rf, user, settings):
        settings.PIGEONHOLE = {**settings.PIGEONHOLE, "DELETE_READ": True}
        pigeonhole.send(user, "Gone once seen")
        storage = make_storage(rf, user)
        assert len(list(storage)) == 1
        storage.update(HttpResponse())
        assert pigeonhole.inbox(user, state="all") == []

    def test_context_manager_marks_shown_messages_read_on_exit(self, rf, user):
        pigeonhole.send(user, "Seen in a block")
        storage = make_storage(rf, user)
        with storage as displayed:
            assert [str(m) for m in displayed] == ["Seen in a block"]
            assert pigeonhole.unread_count(user) == 1
        assert pigeonhole.unread_count(user) == 0

    def test_context_manager_leaves_messages_unread_on_error(self, rf, user):
        pigeonhole.send(user, "Not really seen")
        storage = make_storage(rf, user)
        with pytest.raises(RuntimeError), storage as displayed:
            list(displayed)
            raise RuntimeError("template failed")
        assert pigeonhole.unread_count(user) == 1

    def test_message_added_in_the_same_request_is_displayed(self, rf, user):
        storage = make_storage(rf, user)
        assert len(storage) == 0
        stored = storage.add(pigeonhole.PERSISTENT_SUCCESS, "Just now", ["billing", "new"])
        assert [m.tags for m in storage] == ["billing new success persistent"]
        storage.update(HttpResponse())
        assert pigeonhole.inbox(user, state="read") == [stored]

    def test_user_option_stores_for_someone_else(self, rf, user, other_user):
        storage = make_storage(rf, user)
        stored = storage.add(messages.INFO, "For Bob", user=other_user, subject="Hi")
        assert pigeonhole.inbox(other_user)[0].subject == "Hi"
        assert stored.user_id == other_user.pk
        assert list(storage) == []

    def test_options_on_a_transient_level_are_refused(self, rf, user):
        storage = make_storage(rf, user)
        with pytest.raises(InvalidMessage, match="STORE_LEVELS"):
            storage.add(messages.INFO, "Not stored", url="/somewhere/")

    def test_list_of_tags_works_on_every_kind_of_level(self, rf, user):
        storage = make_storage(rf, user)
        storage.add(messages.INFO, "Transient", ["a", "b"])
        storage.add(pigeonhole.STICKY_INFO, "Sticky", ["c"])
        assert [m.tags for m in storage] == ["c info sticky", "a b info"]

    def test_sticky_messages_are_validated(self, rf, user, settings):
        storage = make_storage(rf, user)
        with pytest.raises(InvalidMessage, match="close_timeout"):
            storage.add(pigeonhole.STICKY_INFO, "Soon", close_timeout="soon")
        with pytest.raises(InvalidMessage, match="NUL"):
            storage.add(pigeonhole.STICKY_INFO, "So\x00on")
        settings.PIGEONHOLE = {**settings.PIGEONHOLE, "MAX_LENGTH": 3}
        with pytest.raises(InvalidMessage, match="MAX_LENGTH"):
            storage.add(pigeonhole.STICKY_INFO, "Too long")
        assert storage.get_sticky() == []

    def test_stored_messages_with_a_nul_character_are_refused(self, rf, user):
        storage = make_storage(rf, user)
        with pytest.raises(InvalidMessage, match="NUL"):
            storage.add(pigeonhole.PERSISTENT_INFO, "Saved", subject="Sa\x00ved")
        assert pigeonhole.inbox(user, state="all") == []

    def test_blank_options_on_a_transient_level_are_ignored(self, rf, user):
        storage = make_storage(rf, user)
        storage.add(messages.INFO, "From a form", subject="", url=None)
        assert [str(m) for m in storage] == ["From a form"]

    def test_info_in_store_levels_is_persisted(self, rf, user, settings):
        settings.PIGEONHOLE = {
            **settings.PIGEONHOLE,
            "STORE_LEVELS": [messages.INFO, pigeonhole.PERSISTENT_INFO],
        }
        request = rf.get("/")
        request.session = SessionStore()
        request.user = user
        request._messages = PersistentStorage(request)
        messages.info(request, "Now stored")
        assert [str(m) for m in pigeonhole.inbox(user)] == ["Now stored"]

    def test_pigeonhole_shortcuts_store_with_options(self, rf, user):
        storage = make_storage(rf, user)
        pigeonhole.warning(storage.request, "Card expires", url="/billing/", subject="Billing")
        [entry] = pigeonhole.inbox(user)
        assert (entry.level, entry.url, entry.subject) == (
            pigeonhole.PERSISTENT_WARNING,
            "/billing/",
            "Billing",
        )
        assert entry.level_tag == "warning"

    def test_add_message_without_middleware_names_the_fix(self, rf):
        from django.contrib.messages.api import MessageFailure

        with pytest.raises(MessageFailure, match="MessageMiddleware"):
            pigeonhole.add_message(rf.get("/"), pigeonhole.PERSISTENT_INFO, "x")
        assert pigeonhole.add_message(rf.get("/"), 21, "x", fail_silently=True) is None

    def test_get_messages_returns_our_storage(self, alice_client):
        response = alice_client.get("/show/")
        assert isinstance(get_messages(response.wsgi_request), PersistentStorage)
