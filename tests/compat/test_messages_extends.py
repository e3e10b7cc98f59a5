"""django-messages-extends' README, run against pigeonhole.compat.messages_extends."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

import pigeonhole
from pigeonhole.compat import messages_extends, presets
from pigeonhole.compat.messages_extends import constants as constants_messages

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("store", "site"),
    pytest.mark.urls("tests.compat.site_messages_extends"),
]

CLOSE = re.compile(r'close-href="([^"]+)"')


@pytest.fixture
def site(settings):
    settings.MESSAGE_STORAGE = "pigeonhole.compat.messages_extends.storages.FallbackStorage"
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, **presets.MESSAGES_EXTENDS}


def texts(response):
    return re.findall(r"</a>\s*(.+?)\s*</div>", response.content.decode())


def test_levels_are_the_library_numbers():
    assert constants_messages.PERSISTENT_MESSAGE_LEVELS == (11, 21, 26, 31, 41)
    assert constants_messages.STICKY_MESSAGE_LEVELS == (12, 22, 27, 32, 42)
    assert (messages_extends.WARNING_PERSISTENT, messages_extends.ERROR_STICKY) == (31, 42)


def test_persistent_messages_stay_until_closed(alice_client, user):
    alice_client.get("/add/")
    first = alice_client.get("/show/")
    assert texts(first) == [
        "You will going to see this messages only in this request",
        "You are going to see this message until you mark it as read.",
        "Houston we have a problem..",
        "Hello world.",
    ]
    assert 'alert- alert-warning persistent"' not in first.content.decode()
    # Shown again: the persistent ones wait to be closed (and the sticky one too).
    assert texts(alice_client.get("/show/")) == texts(first)[:3]
    links = CLOSE.findall(alice_client.get("/show/").content.decode())
    assert len(links) == 2  # only stored messages have a pk to close
    assert alice_client.post(links[0]).status_code == 302
    assert pigeonhole.unread_count(user) == 1
    assert "Houston we have a problem.." in texts(alice_client.get("/show/"))


def test_close_refuses_get(alice_client, user):
    alice_client.get("/add/")
    (link, _) = CLOSE.findall(alice_client.get("/show/").content.decode())
    assert alice_client.get(link).status_code == 405
    assert pigeonhole.unread_count(user) == 2


def test_close_needs_the_csrf_token(csrf_client, user):
    messages_extends_send(user)
    entry = pigeonhole.inbox(user)[0].id
    assert csrf_client.post(f"/messages/mark_read/{entry}/").status_code == 403
    assert pigeonhole.unread_count(user) == 1


def test_ajax_close_answers_empty_and_others_messages_are_not_found(alice_client, user, other_user):
    messages_extends_send(user)
    messages_extends_send(other_user)
    mine, theirs = pigeonhole.inbox(user)[0].id, pigeonhole.inbox(other_user)[0].id
    ajax = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}
    assert alice_client.post(f"/messages/mark_read/{theirs}/", **ajax).status_code == 404
    response = alice_client.post(f"/messages/mark_read/{mine}/", **ajax)
    assert (response.status_code, response.content) == (200, b"")
    assert (pigeonhole.unread_count(user), pigeonhole.unread_count(other_user)) == (0, 1)


def test_mark_all_read_redirects_back_to_this_site_only(alice_client, user):
    messages_extends_send(user)
    messages_extends_send(user)
    back = alice_client.post("/messages/mark_read/all/", HTTP_REFERER="http://testserver/page/")
    assert back["Location"] == "http://testserver/page/"
    assert pigeonhole.unread_count(user) == 0
    away = alice_client.post("/messages/mark_read/all/", HTTP_REFERER="https://evil.example/")
    assert away["Location"] == "/"


def test_message_for_another_user(alice_client, user, other_user):
    alice_client.get("/to-sally/")
    assert pigeonhole.inbox(user) == []
    (message,) = pigeonhole.inbox(other_user)
    assert (message.message, message.level) == ("Hola abc desde alice", 21)


def test_persistent_level_for_anonymous_raises_not_implemented(client):
    with pytest.raises(NotImplementedError):
        client.get("/add/")


def test_expires_keyword(rf, user):
    from django.contrib.sessions.backends.db import SessionStore

    from pigeonhole.compat.messages_extends.storages import FallbackStorage

    request = rf.get("/")
    request.user, request.session = user, SessionStore()
    request._messages = FallbackStorage(request)
    later = timezone.now() + timedelta(days=1)
    messages_extends.persistant_info(request, "Until tomorrow", expires=later)
    (message,) = pigeonhole.inbox(user)
    assert abs(message.expires - later) < timedelta(seconds=1)


def test_bundled_alerts_template_renders_close_links_and_escapes(alice_client, user):
    """The README's ``{% include "messages_extends/includes/alerts_bootstrap.html" %}``."""
    from django.utils.safestring import mark_safe

    pigeonhole.send(user, "<b>plain</b>", level=constants_messages.WARNING_PERSISTENT)
    pigeonhole.send(user, mark_safe("<em>trusted</em>"), level=constants_messages.INFO_PERSISTENT)
    alice_client.get("/add/")
    page = alice_client.get("/bundled/").content.decode()
    assert "&lt;b&gt;plain&lt;/b&gt;" in page and "<b>plain" not in page
    assert "<em>trusted</em>" in page
    assert "Hello world." in page  # flash messages too, without a close-href
    links = CLOSE.findall(page)
    # The stored ones close by the library's URL, the sticky one by pigeonhole's.
    assert len([link for link in links if re.fullmatch(r"/messages/mark_read/\d+/", link)]) == 4
    assert len([link for link in links if re.fullmatch(r"/inbox/sticky/s\w+/close/", link)]) == 1
    assert len(links) == 5 and len(re.findall(r'data-csrf-token="\w+"', page)) == 5
    assert '<div class="alert  alert-warning persistent ">' in page
    assert '<script src="/static/close-alerts.js"></script>' in page


def test_close_alerts_script_is_where_the_readme_loads_it():
    from django.contrib.staticfiles import finders

    found = finders.find("close-alerts.js")
    assert found is not None
    script = open(found, encoding="utf-8").read()  # noqa: SIM115
    assert '"X-CSRFToken"' in script and 'method: "POST"' in script
    assert "url.origin !== window.location.origin" in script


def test_storages_module_has_the_library_class_names():
    from django.contrib.messages.storage.base import BaseStorage

    from pigeonhole.compat.messages_extends import storages
    from pigeonhole.storage import PersistentStorage

    assert issubclass(storages.StickyStorage, BaseStorage)
    assert issubclass(storages.PersistentStorage, PersistentStorage)
    assert {"FallbackStorage", "PersistentStorage", "StickyStorage"} <= set(storages.__all__)


def test_sticky_storage_shows_sticky_messages_in_their_request_only(alice_client, settings):
    """``StickyStorage`` on its own: what the library's sticky storage did in its chain."""
    settings.MESSAGE_STORAGE = "pigeonhole.compat.messages_extends.storages.StickyStorage"
    assert texts(alice_client.get("/sticky/?show")) == ["Only this request", "Until shown"]
    assert texts(alice_client.get("/show/")) == []
    # Added in one request and not shown there: the plain message waits, the sticky one is gone.
    alice_client.get("/sticky/")
    assert texts(alice_client.get("/show/")) == ["Until shown"]


def messages_extends_send(user):
    pigeonhole.send(user, "Stored", level=constants_messages.INFO_PERSISTENT)
