"""django-monitio's README, run against pigeonhole.compat.monitio."""

import re

import pytest
from django.core import mail

import pigeonhole
from pigeonhole.compat import monitio, presets

from .conftest import lines

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("store", "site"),
    pytest.mark.urls("tests.compat.site_monitio"),
]


@pytest.fixture
def site(settings):
    settings.MESSAGE_STORAGE = "pigeonhole.compat.monitio.storage.PersistentMessageStorage"
    settings.PIGEONHOLE = {
        **settings.PIGEONHOLE,
        **presets.MONITIO,
        "SITE_URL": "https://example.com",
    }


def test_levels_are_the_library_numbers():
    levels = (monitio.DEBUG, monitio.INFO, monitio.SUCCESS, monitio.WARNING, monitio.ERROR)
    assert levels == (110, 120, 125, 130, 140)
    assert monitio.PERSISTENT_MESSAGE_LEVELS == (120, 125, 130, 140)


def test_readme_messages_are_stored_under_pigeonhole_levels(
    alice_client, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.get("/add/")
    stored = pigeonhole.inbox(user)
    assert [(m.level, m.subject, m.message) for m in stored] == [
        (21, "Please read me", "Message body"),
        (31, "", "This message is stored in persistent_messages table till removed"),
    ]
    # email=True mailed the message to the user.
    assert [message.to for message in mail.outbox] == [["alice@example.com"]]


def test_template_shows_subject_close_links_and_counts(alice_client, user):
    alice_client.get("/add/")
    page = alice_client.get("/show/").content.decode()
    assert "<strong>Please read me</strong>" in page
    assert len(re.findall(r'href="/messages/mark_read/\d+/"', page)) == 2
    assert 'id="unread">inbox (2)' in page
    assert 'id="nonpersistent">1<' in page  # "Hello world."
    # Stored messages stay until marked read, as in monitio.
    second = alice_client.get("/show/").content.decode()
    assert 'id="unread">inbox (2)' in second
    assert "Hello world." not in second


def test_mark_read_and_delete_views(alice_client, user):
    alice_client.get("/add/")
    first, second = (m.id for m in pigeonhole.inbox(user))
    assert alice_client.get(f"/messages/mark_read/{first}/").status_code == 405
    assert alice_client.post(f"/messages/mark_read/{first}/").status_code == 302
    assert pigeonhole.unread_count(user) == 1
    assert alice_client.post(f"/messages/delete/message/{second}/").status_code == 302
    assert [m.id for m in pigeonhole.inbox(user, state="all")] == [first]
    assert alice_client.post("/messages/delete/all/").status_code == 302
    assert pigeonhole.inbox(user, state="all") == []


def test_mark_all_read_touches_only_the_users_messages(alice_client, user, other_user):
    monitio.create_message(user, monitio.INFO, "Mine")
    monitio.create_message(other_user, monitio.INFO, "Theirs")
    theirs = pigeonhole.inbox(other_user)[0].id
    assert alice_client.post(f"/messages/mark_read/{theirs}/").status_code == 404
    assert alice_client.post(f"/messages/delete/message/{theirs}/").status_code == 404
    alice_client.post("/messages/mark_read/all/")
    assert (pigeonhole.unread_count(user), pigeonhole.unread_count(other_user)) == (0, 1)


def test_state_changes_need_the_csrf_token(csrf_client, user):
    monitio.create_message(user, monitio.ERROR, "Guarded")
    entry = pigeonhole.inbox(user)[0].id
    assert csrf_client.post(f"/messages/mark_read/{entry}/").status_code == 403
    assert csrf_client.post("/messages/delete/all/").status_code == 403
    assert pigeonhole.unread_count(user) == 1


def test_message_to_another_user(alice_client, user, other_user):
    alice_client.get("/to-sally/")
    (message,) = pigeonhole.inbox(other_user)
    assert (message.level, message.subject) == (26, "Success message")
    assert pigeonhole.inbox(user) == []


def test_create_message_without_a_request(user, other_user):
    monitio.create_message(
        user, monitio.WARNING, "From a task", from_user=other_user, subject="Task", url="/t/"
    )
    (message,) = pigeonhole.inbox(user)
    assert (message.level, message.from_user_id, message.url) == (31, other_user.pk, "/t/")


def test_readme_background_task_api(user, other_user):
    """The README's Celery example: ``from monitio import api; api.create_message(...)``."""
    from pigeonhole.compat.monitio import api

    api.create_message(user, monitio.INFO, "Export ready", from_user=other_user, sse=True)
    (message,) = pigeonhole.inbox(user)
    assert (message.level, message.message) == (21, "Export ready")
    assert message.from_user_id == other_user.pk
    assert monitio.api is api and monitio.create_message is api.create_message


def test_api_module_keeps_monitio_signatures():
    import inspect

    from pigeonhole.compat.monitio import api

    def names(func):
        return list(inspect.signature(func).parameters)

    assert names(api.create_message) == [
        "to_user", "level", "message", "from_user", "extra_tags", "subject", "expires",
        "close_timeout", "sse", "email", "url",
    ]  # fmt: skip
    request_args = [
        "request", "level", "message", "extra_tags", "fail_silently", "subject", "user",
        "email", "sse", "from_user", "expires", "close_timeout", "url",
    ]  # fmt: skip
    assert names(api.add_message) == request_args
    for shortcut in (api.info, api.warning, api.debug, api.success, api.error):
        assert names(shortcut) == [request_args[0], *request_args[2:]]


def test_readme_header_include_loads_the_live_client(alice_client):
    from django.test import Client

    head = alice_client.get("/head/").content.decode()
    assert re.search(r'<script src="/static/pigeonhole/pigeonhole\.js" defer', head)
    assert '<link rel="stylesheet" href="/static/pigeonhole/pigeonhole.css">' in head
    assert 'data-stream-url="/inbox/stream/"' in head
    # Nothing to stream for anonymous visitors.
    assert "pigeonhole.js" not in Client().get("/head/").content.decode()


def test_json_view_lists_what_the_page_would_show(alice_client, user):
    alice_client.get("/add/")
    listed = alice_client.get("/messages/json/").json()
    assert [(m["message"], m["is_persistent"]) for m in listed] == [
        ("This message is stored in persistent_messages table till removed", True),
        ("Message body", True),
        ("Hello world.", False),
    ]
    assert all(m["pk"] for m in listed if m["is_persistent"])
    assert lines(alice_client.get("/messages/json/")) != []  # stored ones remain unread


def test_anonymous_persistent_level_raises_not_implemented(client):
    with pytest.raises(NotImplementedError):
        client.get("/add/")
