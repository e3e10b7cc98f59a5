"""django-stored-messages' README and REST API, run against pigeonhole.compat.stored_messages."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

import pigeonhole
from pigeonhole.compat import presets, stored_messages
from pigeonhole.exceptions import MessageNotFound
from pigeonhole.rest_framework.serializers import MAX_PAGE_SIZE

from .conftest import entry_reads, lines

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("store", "site"),
    pytest.mark.urls("tests.compat.site_stored_messages"),
]


@pytest.fixture
def site(settings):
    settings.MESSAGE_STORAGE = "pigeonhole.compat.stored_messages.storage.PersistentStorage"
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, **presets.STORED_MESSAGES}


def test_levels_are_the_library_numbers():
    levels = [stored_messages.STORED_DEBUG, stored_messages.STORED_INFO]
    levels += [stored_messages.STORED_SUCCESS, stored_messages.STORED_WARNING]
    assert [*levels, stored_messages.STORED_ERROR] == [11, 21, 26, 31, 41]
    assert stored_messages.INFO == 20


def test_constants_module_carries_the_levels_and_tags():
    from django.contrib.messages import constants as django_levels

    from pigeonhole.compat.stored_messages import constants

    assert (constants.STORED_INFO, constants.STORED_ERROR, constants.INFO) == (21, 41, 20)
    assert constants.DEFAULT_TAGS[constants.STORED_WARNING] == "persisted warning"
    assert constants.DEFAULT_TAGS[constants.INFO] == "info"
    # The library patched Django's tags on import; this module leaves them alone.
    assert constants.STORED_WARNING not in django_levels.DEFAULT_TAGS
    assert stored_messages.constants is constants


def test_api_module_is_the_librarys(user):
    """``from stored_messages import api`` gives the library's functions, not pigeonhole's."""
    from pigeonhole.compat.stored_messages import api

    api.add_message_for([user], stored_messages.STORED_INFO, "Via the api module")
    (entry,) = pigeonhole.inbox(user)
    assert api.mark_read(user, entry) is True
    assert api.mark_all_read(user) == 0
    assert stored_messages.api is api and stored_messages.mark_read is api.mark_read


def test_stored_level_is_persisted_and_read_on_display(alice_client, user):
    alice_client.get("/add/")
    assert [m.message for m in pigeonhole.inbox(user)] == ["Hello world, to the database!"]
    assert lines(alice_client.get("/show/")) == [
        "21|Hello world, to the database!",
        "20|Hello world.",
    ]
    # Iterating marked the stored one read: it is kept, but no longer shown.
    assert lines(alice_client.get("/show/")) == []
    assert pigeonhole.unread_count(user) == 0
    assert [m.message for m in pigeonhole.inbox(user, state="read")] == [
        "Hello world, to the database!"
    ]


def test_storage_used_false_keeps_messages_unread(alice_client, user):
    alice_client.get("/add/")
    alice_client.get("/show/?keep=1")
    assert pigeonhole.unread_count(user) == 1
    assert "21|Hello world, to the database!" in lines(alice_client.get("/show/"))


def test_store_levels_setting_persists_standard_levels(alice_client, user, settings):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "STORE_LEVELS": (20, 40)}
    alice_client.get("/add/")
    assert [m.message for m in pigeonhole.inbox(user)] == ["Hello world."]


def test_add_message_through_the_module(alice_client):
    alice_client.get("/add-api/")
    assert lines(alice_client.get("/show/")) == ["20|Hello!"]


def test_mark_read_takes_a_message_and_says_whether_it_was_unread(user, other_user):
    stored_messages.add_message_for([user], stored_messages.STORED_INFO, "Read me")
    message = pigeonhole.inbox(user)[0]
    assert stored_messages.mark_read(user, message) is True
    assert stored_messages.mark_read(user, message) is False
    with pytest.raises(MessageNotFound):
        stored_messages.mark_read(other_user, message)


def test_add_message_for_keeps_the_date_and_url(user, other_user):
    date = datetime(2020, 5, 17, 9, 30, tzinfo=UTC)
    stored_messages.add_message_for(
        [user, other_user], stored_messages.STORED_WARNING, "Maintenance", "ops", date, "/status/"
    )
    for person in (user, other_user):
        (message,) = pigeonhole.inbox(person)
        assert (message.level, message.extra_tags, message.url) == (31, "ops", "/status/")
        assert message.created == date


def test_broadcast_message_reaches_every_user(user, other_user, django_user_model):
    third = django_user_model.objects.create_user(username="carol", password="password")
    stored_messages.broadcast_message(stored_messages.STORED_ERROR, "Everyone!")
    for person in (user, other_user, third):
        assert [m.message for m in pigeonhole.inbox(person)] == ["Everyone!"]


def test_mark_all_read(user):
    stored_messages.add_message_for([user], stored_messages.STORED_INFO, "One")
    stored_messages.add_message_for([user], stored_messages.STORED_INFO, "Two")
    assert stored_messages.mark_all_read(user) == 2
    assert pigeonhole.unread_count(user) == 0


# The REST API, as the library's own tests drove it ------------------------------------------


def test_inbox_list_detail_and_read(alice_client, user):
    alice_client.get("/add/")
    alice_client.get("/add/")
    listed = alice_client.get(reverse("stored_messages:inbox-list")).json()
    assert [(m["message"], m["level"]) for m in listed] == [
        ("Hello world, to the database!", 21),
        ("Hello world, to the database!", 21),
    ]
    assert set(listed[0]) == {"id", "message", "level", "tags", "date", "url"}
    first = listed[0]["id"]
    detail = alice_client.get(reverse("stored_messages:inbox-detail", kwargs={"pk": first}))
    assert detail.json()["id"] == first
    response = alice_client.post(reverse("stored_messages:inbox-read", args=(first,)))
    assert response.status_code == 200
    assert response.json() == {"status": "message marked as read"}
    assert len(alice_client.get(reverse("stored_messages:inbox-list")).json()) == 1


def test_mark_all_read_endpoint(alice_client, user):
    alice_client.get("/add/")
    response = alice_client.post(reverse("stored_messages:mark_all_read"))
    assert response.status_code == 200
    assert response.json() == {"message": "All messages read"}
    assert alice_client.get(reverse("stored_messages:inbox-list")).json() == []


def test_anonymous_list_is_empty_and_changes_are_refused(client, user):
    stored_messages.add_message_for([user], stored_messages.STORED_INFO, "Private")
    assert client.get(reverse("stored_messages:inbox-list")).json() == []
    assert client.post(reverse("stored_messages:mark_all_read")).status_code == 403
    assert pigeonhole.unread_count(user) == 1


def test_another_users_message_is_not_found(client, other_user, user):
    stored_messages.add_message_for([user], stored_messages.STORED_INFO, "Alice's")
    entry = pigeonhole.inbox(user)[0].id
    client.force_login(other_user)
    assert client.get(reverse("stored_messages:inbox-detail", args=(entry,))).status_code == 404
    assert client.post(reverse("stored_messages:inbox-read", args=(entry,))).status_code == 404
    assert pigeonhole.unread_count(user) == 1


def test_state_changes_need_the_csrf_token(csrf_client, user):
    stored_messages.add_message_for([user], stored_messages.STORED_INFO, "Guarded")
    entry = pigeonhole.inbox(user)[0].id
    assert csrf_client.post(reverse("stored_messages:inbox-read", args=(entry,))).status_code == 403
    assert csrf_client.post(reverse("stored_messages:mark_all_read")).status_code == 403
    assert pigeonhole.unread_count(user) == 1


def test_inbox_list_reads_one_page_at_most(alice_client, crowded_inbox, store):
    inbox = reverse("stored_messages:inbox-list")
    with CaptureQueriesContext(connection) as queries:
        listed = alice_client.get(inbox).json()
    assert len(listed) == MAX_PAGE_SIZE
    assert listed[0]["message"] == f"m{crowded_inbox - 1}"
    if store == "db":
        assert entry_reads(queries) and max(entry_reads(queries)) <= MAX_PAGE_SIZE + 1
    few = alice_client.get(inbox, {"limit": 2}).json()
    assert [m["message"] for m in few] == [f"m{crowded_inbox - 1}", f"m{crowded_inbox - 2}"]
    for bad in ("0", str(MAX_PAGE_SIZE + 1), "all"):
        response = alice_client.get(inbox, {"limit": bad})
        assert response.status_code == 400
        assert "limit" in response.json()


@pytest.mark.parametrize(
    ("name", "args"),
    [("inbox-list", ()), ("inbox-detail", (1,)), ("inbox-read", (1,)), ("mark_all_read", ())],
)
def test_options_answers_on_each_route(alice_client, name, args):
    response = alice_client.options(reverse(f"stored_messages:{name}", args=args))
    assert response.status_code == 200


# The template tags, registered as the library's ``stored_messages_tags`` ---------------


def render(source, user):
    from django.template import Context, Engine

    engine = Engine(
        app_dirs=True,
        libraries={"stored_messages_tags": "pigeonhole.compat.stored_messages.templatetags"},
    )
    return engine.from_string("{% load stored_messages_tags %}" + source).render(
        Context({"user": user})
    )


def test_template_tags_list_count_and_archive(user, other_user):
    for text in ("one", "two", "<b>three</b>"):
        stored_messages.add_message_for([user], stored_messages.STORED_INFO, text)
    stored_messages.add_message_for([other_user], stored_messages.STORED_INFO, "not yours")
    pigeonhole.mark_read(user, pigeonhole.inbox(user, state="all")[-1])  # "one"
    listed = render("{% stored_messages_list 5 %}", user)
    assert "<li>[alice] &lt;b&gt;three&lt;/b&gt;</li>" in listed
    assert "<li>[alice] two</li>" in listed
    assert "one" not in listed and "not yours" not in listed
    assert render("{% stored_messages_list 1 %}", user).count("<li>") == 1
    assert render("{% stored_messages_count as n %}[{{ n }}]", user) == "[2]"
    archive = render("{% stored_messages_archive %}", user)
    assert archive.count("<li>") == 3 and "<li>[alice] one</li>" in archive


def test_template_tags_render_user_and_text_as_the_library_did(user, django_user_model):
    """Its test suite: ``<li>[test_user] unicode message ❤</li>``, fifteen times."""
    test_user = django_user_model.objects.create_user(username="test_user")
    for _ in range(20):
        stored_messages.add_message_for([test_user], stored_messages.INFO, "unicode message ❤")
    for tag in ("stored_messages_list", "stored_messages_archive"):
        rendered = render("{%% %s 15 %%}" % tag, test_user)  # noqa: UP031
        assert rendered.count("<li>[test_user] unicode message ❤</li>") == 15


def test_template_tags_escape_the_user_name_and_keep_safe_text(django_user_model):
    from django.utils.safestring import mark_safe

    odd = django_user_model.objects.create_user(username="<i>odd</i>")
    stored_messages.add_message_for([odd], stored_messages.STORED_INFO, "<b>raw</b>")
    pigeonhole.send(odd, mark_safe("<em>trusted</em>"), level=stored_messages.STORED_INFO)
    listed = render("{% stored_messages_list %}", odd)
    assert "<li>[&lt;i&gt;odd&lt;/i&gt;] &lt;b&gt;raw&lt;/b&gt;</li>" in listed
    assert "<li>[&lt;i&gt;odd&lt;/i&gt;] <em>trusted</em></li>" in listed


def test_template_tags_show_nothing_to_anonymous_visitors():
    from django.contrib.auth.models import AnonymousUser

    assert render("{% stored_messages_list %}", AnonymousUser()).strip() == ""
    assert render("{% stored_messages_count %}", AnonymousUser()) == "0"


@pytest.mark.parametrize("pk", ["99999999999999999999999", "²", "0"])
def test_ids_no_database_holds_are_not_found(alice_client, pk):
    assert alice_client.get(reverse("stored_messages:inbox-detail", args=(pk,))).status_code == 404
    assert alice_client.post(reverse("stored_messages:inbox-read", args=(pk,))).status_code == 404
