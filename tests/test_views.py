"""The state-changing views: POST only, CSRF-protected, own messages only."""

import pytest
from django.test import Client

import pigeonhole

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store")]


@pytest.fixture
def entry(user):
    pigeonhole.send(user, "Hello")
    return pigeonhole.inbox(user)[0]


@pytest.fixture
def alice(client, user):
    client.force_login(user)
    return client


def test_mark_read_redirects_to_safe_next(alice, user, entry):
    response = alice.post(f"/messages/{entry.id}/read/", {"next": "/show/"})
    assert (response.status_code, response["Location"]) == (302, "/show/")
    assert pigeonhole.unread_count(user) == 0


def test_unsafe_next_falls_back_to_root(alice, entry):
    response = alice.post(f"/messages/{entry.id}/read/", {"next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_json_answer_carries_the_new_counts(alice, user, entry):
    pigeonhole.send(user, "Another")
    response = alice.post(f"/messages/{entry.id}/archive/", HTTP_ACCEPT="application/json")
    counts = {"unread": 1, "all": 1, "archived": 1, "saved": 0}
    assert response.json() == {"changed": 1, "unread": 1, "counts": counts}


@pytest.mark.parametrize("action", ["read", "unread", "archive", "unarchive", "delete"])
def test_another_users_message_is_not_found(client, other_user, entry, action):
    client.force_login(other_user)
    response = client.post(f"/messages/{entry.id}/{action}/", HTTP_ACCEPT="application/json")
    assert response.status_code == 404
    assert pigeonhole.inbox(entry_owner := other_user) == []
    assert entry_owner.pk != entry.user_id


def test_get_is_not_allowed(alice, entry):
    assert alice.get(f"/messages/{entry.id}/read/").status_code == 405


def test_csrf_token_is_required(user, entry):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(f"/messages/{entry.id}/read/").status_code == 403
    assert pigeonhole.unread_count(user) == 1


def test_anonymous_is_sent_to_login_or_told_401(client, entry):
    assert client.post(f"/messages/{entry.id}/read/").status_code == 302
    response = client.post(f"/messages/{entry.id}/read/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401


def test_deleting_unread_is_forbidden(alice, entry):
    response = alice.post(f"/messages/{entry.id}/delete/", HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert "ALLOW_DELETE_UNREAD" in response.json()["error"]


def test_mark_all_read_honours_the_before_watermark(alice, user, entry):
    pigeonhole.send(user, "Arrived after the page loaded")
    alice.post("/messages/read-all/", {"before": str(entry.id)})
    assert [str(m) for m in pigeonhole.inbox(user)] == ["Arrived after the page loaded"]


def test_mark_all_read_rejects_a_bad_watermark(alice, entry):
    assert alice.post("/messages/read-all/", {"before": "yesterday"}).status_code == 400
