"""The inbox page and its forms, through Django's test client: no JavaScript involved."""

import re

import pytest
from django.test import Client

import pigeonhole
from pigeonhole.views import pages

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store")]

INBOX = "/messages/"


@pytest.fixture
def alice(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def csrf_alice(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def ids_on(response) -> list[int]:
    """The entries listed, without the placeholder of the live template."""
    page = re.sub(r"<template.*?</template>", "", response.text, flags=re.S)
    return [int(i) for i in re.findall(r'data-pigeonhole-id="(\d+)" data-pigeonhole-entry', page)]


def tab_counts(response) -> dict[str, int]:
    found = re.findall(r'data-pigeonhole-tab-count="(\w+)"[^>]*>(\d+)<', response.text)
    return {key: int(value) for key, value in found}


def csrf_token(response) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text).group(1)


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get(INBOX)
    assert response.status_code == 302
    assert "login" in response["Location"] and "next=/messages/" in response["Location"]


def test_unread_tab_lists_unread_messages_newest_first_with_the_count(alice, user):
    for text in ("first", "second", "third"):
        pigeonhole.send(user, text)
    pigeonhole.mark_read(user, pigeonhole.inbox(user)[-1])  # "first"
    response = alice.get(INBOX)
    assert response.status_code == 200
    expected = [entry.id for entry in pigeonhole.inbox(user, state="unread")]
    assert ids_on(response) == expected and len(expected) == 2
    assert "third" in response.text and "second" in response.text
    assert ">first<" not in response.text
    assert re.search(r"data-pigeonhole-unread=\"unread\">\s*2<", response.text)


def test_all_and_archived_tabs(alice, user):
    pigeonhole.send(user, "kept")
    pigeonhole.send(user, "put away")
    away = pigeonhole.inbox(user)[0]
    pigeonhole.mark_read(user, away)
    pigeonhole.archive(user, away)
    everything = alice.get(INBOX, {"state": "all"})
    archived = alice.get(INBOX, {"state": "archived"})
    assert "kept" in everything.text and "put away" not in everything.text
    assert ids_on(archived) == [away.id]
    assert 'aria-current="page">Archived' in archived.text
    assert "Move to inbox" in archived.text
    assert tab_counts(archived) == {"all": 1, "archived": 1, "saved": 0}
    pigeonhole.send(user, "also kept")
    assert tab_counts(alice.get(INBOX, {"state": "all"})) == {"all": 2, "archived": 1, "saved": 0}


def test_unknown_tab_falls_back_to_unread(alice, user):
    pigeonhole.send(user, "hello")
    response = alice.get(INBOX, {"state": "nonsense", "after": "x"})
    assert response.status_code == 200 and 'aria-current="page">Unread' in response.text


def test_keyset_pages_follow_the_older_link(alice, user, settings, monkeypatch):
    monkeypatch.setattr(pages, "PAGE_SIZE", 2)
    for n in range(5):
        pigeonhole.send(user, f"message {n}")
    newest_first = [entry.id for entry in pigeonhole.inbox(user)]
    seen = []
    url = INBOX
    while url:
        response = alice.get(url)
        seen += ids_on(response)
        match = re.search(r'href="([^"]+)" rel="next"', response.text)
        url = match.group(1).replace("&amp;", "&") if match else None
    assert seen == newest_first


def test_each_entry_shows_level_subject_text_sender_link_and_time(alice, user, other_user):
    pigeonhole.send(
        user,
        "Your build failed",
        subject="CI",
        level=pigeonhole.PERSISTENT_ERROR,
        url="/builds/7/",
        from_user=other_user,
    )
    text = alice.get(INBOX).text
    assert "text-bg-danger" in text and ">error<" in text
    assert ">CI<" in text and "Your build failed" in text
    assert f'<b data-pigeonhole-field="sender_name">{other_user.username}</b>' in text
    assert 'href="/builds/7/"' in text
    assert "just now" in text
    assert 'action="/messages/' in text and '/reply/"' in text


def test_message_without_a_sender_has_no_reply_form(alice, user):
    pigeonhole.send(user, "system notice")
    entry = pigeonhole.inbox(user)[0]
    assert f"/messages/{entry.id}/reply/" not in alice.get(INBOX).text


def test_message_text_is_escaped(alice, user):
    pigeonhole.send(user, "<img src=x onerror=alert(1)>", subject="<b>bold</b>")
    text = alice.get(INBOX).text
    assert "<img src=x" not in text and "<b>bold</b>" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text


def test_empty_states(alice):
    assert "All caught up" in alice.get(INBOX).text
    assert "Nothing archived." in alice.get(INBOX, {"state": "archived"}).text
    assert "No messages yet." in alice.get(INBOX, {"state": "all"}).text


def test_other_users_messages_never_show(alice, other_user):
    pigeonhole.send(other_user, "for bob only")
    for state in ("unread", "all", "archived"):
        assert "for bob only" not in alice.get(INBOX, {"state": state}).text


def test_mark_all_read_stops_at_the_newest_shown(csrf_alice, user):
    pigeonhole.send(user, "seen")
    page = csrf_alice.get(INBOX)
    before = re.search(r'name="before" value="(\d+)"', page.text).group(1)
    pigeonhole.send(user, "arrived after the page")
    response = csrf_alice.post(
        "/messages/read-all/",
        {"before": before, "next": INBOX, "csrfmiddlewaretoken": csrf_token(page)},
    )
    assert (response.status_code, response["Location"]) == (302, INBOX)
    assert [str(e) for e in pigeonhole.inbox(user)] == ["arrived after the page"]


def test_page_forms_carry_a_working_csrf_token(csrf_alice, user):
    pigeonhole.send(user, "hello")
    entry = pigeonhole.inbox(user)[0]
    page = csrf_alice.get(INBOX)
    url = f"/messages/{entry.id}/read/"
    assert f'action="{url}"' in page.text
    assert csrf_alice.post(url, {"next": INBOX}).status_code == 403
    assert pigeonhole.unread_count(user) == 1
    response = csrf_alice.post(url, {"next": INBOX, "csrfmiddlewaretoken": csrf_token(page)})
    assert (response.status_code, response["Location"]) == (302, INBOX)
    assert pigeonhole.unread_count(user) == 0


# Bulk actions ------------------------------------------------------------


def test_bulk_archive_changes_only_the_chosen(alice, user):
    for text in ("a", "b", "c"):
        pigeonhole.send(user, text)
    c, b, a = pigeonhole.inbox(user)
    response = alice.post(
        "/messages/bulk/", {"action": "archive", "ids": [a.id, c.id], "next": INBOX}
    )
    assert (response.status_code, response["Location"]) == (302, INBOX)
    assert [e.id for e in pigeonhole.inbox(user)] == [b.id]
    assert {e.id for e in pigeonhole.inbox(user, state="archived")} == {a.id, c.id}


def test_bulk_ignores_other_users_ids(alice, user, other_user):
    pigeonhole.send(user, "mine")
    pigeonhole.send(other_user, "bob's")
    mine, bobs = pigeonhole.inbox(user)[0], pigeonhole.inbox(other_user)[0]
    response = alice.post(
        "/messages/bulk/",
        {"action": "read", "ids": [mine.id, bobs.id]},
        HTTP_ACCEPT="application/json",
    )
    counts = {"unread": 0, "all": 1, "archived": 0, "saved": 0}
    assert response.json() == {"changed": 1, "unread": 0, "counts": counts}
    assert pigeonhole.unread_count(other_user) == 1


def test_bulk_with_only_foreign_ids_changes_nothing(alice, other_user):
    pigeonhole.send(other_user, "bob's")
    bobs = pigeonhole.inbox(other_user)[0]
    response = alice.post(
        "/messages/bulk/", {"action": "archive", "ids": [bobs.id]}, HTTP_ACCEPT="application/json"
    )
    assert response.json()["changed"] == 0
    assert pigeonhole.inbox(other_user) == [bobs]


@pytest.mark.db_only
@pytest.mark.parametrize("action", ["read", "unread", "archive", "unarchive", "delete"])
def test_bulk_with_hundreds_of_foreign_ids_costs_a_few_queries(
    alice, user, other_user, action, django_assert_max_num_queries
):
    for text in ("a", "b", "c"):
        pigeonhole.send(user, text)
    mine = pigeonhole.inbox(user)
    if action in ("unread", "delete"):
        pigeonhole.mark_read(user, mine)
    if action == "unarchive":
        pigeonhole.archive(user, mine)
    pigeonhole.send(other_user, "bob's")
    bobs = pigeonhole.inbox(other_user)[0]
    foreign = [bobs.id, *range(10**6, 10**6 + 496)]
    with django_assert_max_num_queries(15):
        response = alice.post(
            "/messages/bulk/",
            {"action": action, "ids": [*foreign, *(e.id for e in mine[:2])]},
            HTTP_ACCEPT="application/json",
        )
    assert response.status_code == 200 and response.json()["changed"] == 2
    assert pigeonhole.inbox(other_user) == [bobs]
    # The one own entry left out of the request stays where it was.
    left = pigeonhole.inbox(user, state="archived" if action == "unarchive" else "all")
    assert len(left) == (3 if action in ("read", "unread") else 1)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"action": "explode", "ids": ["1"]}, "Choose one of"),
        ({"action": "read"}, "Select at least one"),
        ({"action": "read", "ids": ["1", "x"]}, "message ids"),
    ],
)
def test_bulk_rejects_bad_input(alice, data, error):
    response = alice.post("/messages/bulk/", data, HTTP_ACCEPT="application/json")
    assert response.status_code == 400 and error in response.json()["error"]


def test_bulk_delete_of_unread_is_refused_whole(alice, user):
    pigeonhole.send(user, "unread one")
    pigeonhole.send(user, "read one")
    read_one, unread_one = pigeonhole.inbox(user)
    pigeonhole.mark_read(user, read_one)
    response = alice.post(
        "/messages/bulk/",
        {"action": "delete", "ids": [read_one.id, unread_one.id]},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 403
    assert len(pigeonhole.inbox(user, state="all")) == 2


def test_bulk_needs_csrf(user):
    pigeonhole.send(user, "x")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    entry = pigeonhole.inbox(user)[0]
    assert client.post("/messages/bulk/", {"action": "read", "ids": [entry.id]}).status_code == 403
    assert pigeonhole.unread_count(user) == 1


def test_bulk_redirect_never_leaves_the_site(alice, user):
    pigeonhole.send(user, "x")
    entry = pigeonhole.inbox(user)[0]
    for target in ("https://evil.example/", "//evil.example/", "javascript:alert(1)"):
        response = alice.post(
            "/messages/bulk/", {"action": "unread", "ids": [entry.id], "next": target}
        )
        assert response["Location"] == "/"


# Replies -----------------------------------------------------------------


def test_reply_reaches_the_sender(alice, user, other_user):
    pigeonhole.send(user, "Lunch?", subject="Plans", from_user=other_user)
    entry = pigeonhole.inbox(user)[0]
    response = alice.post(f"/messages/{entry.id}/reply/", {"message": "Yes!", "next": INBOX})
    assert (response.status_code, response["Location"]) == (302, INBOX)
    answer = pigeonhole.inbox(other_user)[0]
    assert (str(answer), answer.subject, answer.from_user_id) == ("Yes!", "Re: Plans", user.pk)


def test_reply_to_another_users_message_is_not_found(alice, user, other_user):
    pigeonhole.send(other_user, "private", from_user=user)
    bobs = pigeonhole.inbox(other_user)[0]
    response = alice.post(
        f"/messages/{bobs.id}/reply/", {"message": "hi"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 404
    assert pigeonhole.inbox(user) == []


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_reply_is_refused(alice, user, other_user, text):
    pigeonhole.send(user, "Lunch?", from_user=other_user)
    entry = pigeonhole.inbox(user)[0]
    response = alice.post(
        f"/messages/{entry.id}/reply/", {"message": text}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    assert pigeonhole.inbox(other_user) == []


def test_reply_to_a_message_without_sender_is_refused(alice, user):
    pigeonhole.send(user, "system")
    entry = pigeonhole.inbox(user)[0]
    response = alice.post(
        f"/messages/{entry.id}/reply/", {"message": "hi"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400 and "no sender" in response.json()["error"]


def test_reply_needs_csrf(user, other_user):
    pigeonhole.send(user, "Lunch?", from_user=other_user)
    entry = pigeonhole.inbox(user)[0]
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(f"/messages/{entry.id}/reply/", {"message": "x"}).status_code == 403
    assert pigeonhole.inbox(other_user) == []


def test_visiting_the_inbox_does_not_mark_messages_read(alice, user):
    pigeonhole.send(user, "still unread")
    alice.get(INBOX)
    alice.get(INBOX, {"state": "all"})
    assert pigeonhole.unread_count(user) == 1


def test_live_template_only_on_first_pages_of_inbox_tabs(alice, user):
    pigeonhole.send(user, "x")
    assert 'id="pigeonhole-entry-template"' in alice.get(INBOX).text
    assert 'id="pigeonhole-entry-template"' not in alice.get(INBOX, {"state": "archived"}).text
    after = pigeonhole.inbox(user)[0].id
    assert 'id="pigeonhole-entry-template"' not in alice.get(INBOX, {"after": after}).text


def test_paging_after_another_users_id_shows_only_own_entries(alice, user, other_user):
    pigeonhole.send(user, "mine")
    for _ in range(3):
        pigeonhole.send(other_user, "bob's")
    bobs_newest = pigeonhole.inbox(other_user)[0].id
    response = alice.get(INBOX, {"after": bobs_newest + 1})
    assert "bob&#x27;s" not in response.text and "bob's" not in response.text
    assert ids_on(response) == [e.id for e in pigeonhole.inbox(user) if e.id < bobs_newest + 1]
