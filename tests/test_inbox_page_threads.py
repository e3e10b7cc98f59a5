"""The inbox page's Saved tab, Save and Mute thread buttons, and seen on opening: no JavaScript."""

import pytest

import pigeonhole

from .test_inbox_page import ids_on, tab_counts

# The Redis store keeps these next; until then they run on the database.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store"), pytest.mark.db_only]


@pytest.fixture
def alice(client, user):
    client.force_login(user)
    return client


def test_save_and_the_saved_tab(alice, user):
    pigeonhole.send(user, "keep me")
    pigeonhole.send(user, "other")
    keep = pigeonhole.inbox(user)[-1]
    page = alice.get("/messages/")
    assert f"/messages/{keep.id}/save/" in page.content.decode()
    answer = alice.post(f"/messages/{keep.id}/save/", {"next": "/messages/"})
    assert answer.status_code == 302
    saved = alice.get("/messages/?state=saved")
    assert ids_on(saved) == [keep.id]
    assert tab_counts(saved)["saved"] == 1
    assert f"/messages/{keep.id}/unsave/" in saved.content.decode()
    alice.post(f"/messages/{keep.id}/unsave/", {"next": "/messages/"})
    assert ids_on(alice.get("/messages/?state=saved")) == []


def test_mute_thread_from_the_page(alice, user, other_user):
    pigeonhole.send(user, "first", thread="issue:1")
    pigeonhole.send(user, "plain")
    row, plain = pigeonhole.inbox(user)[1], pigeonhole.inbox(user)[0]
    page = alice.get("/messages/").content.decode()
    assert f"/messages/{row.id}/mute/" in page
    assert f"/messages/{plain.id}/mute/" not in page  # no thread, nothing to mute
    assert alice.post(f"/messages/{row.id}/mute/", {"next": "/messages/"}).status_code == 302
    assert pigeonhole.muted_threads(user) == ["issue:1"]
    assert f"/messages/{row.id}/unmute/" in alice.get("/messages/").content.decode()
    alice.post(f"/messages/{row.id}/unmute/", {"next": "/messages/"})
    assert pigeonhole.muted_threads(user) == []
    assert alice.post(f"/messages/{plain.id}/mute/").status_code == 400
    assert alice.post("/messages/999999/mute/").status_code == 404


def test_opening_the_inbox_marks_seen_what_it_shows(alice, user):
    for text in "abc":
        pigeonhole.send(user, text)
    assert pigeonhole.unseen_count(user) == 3
    alice.get("/messages/")
    assert pigeonhole.unseen_count(user) == 0
    assert pigeonhole.unread_count(user) == 3
