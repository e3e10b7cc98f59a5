"""The polling endpoint, for WSGI sites and clients that cannot stream."""

import pytest
from django.urls import reverse

import pigeonhole
from pigeonhole.live import WINDOW

pytestmark = pytest.mark.django_db

URL = "/messages/count/"


def test_url_name():
    assert reverse("pigeonhole:count") == URL
    assert reverse("pigeonhole:stream") == "/messages/stream/"


def test_count_answers_unread_and_latest_with_an_etag(client, user, settings):
    settings.PIGEONHOLE = {"POLL_INTERVAL": 45}
    pigeonhole.send(user, "one")
    client.force_login(user)
    response = client.get(URL)
    newest = pigeonhole.inbox(user)[0]
    assert response.status_code == 200
    assert response.json()["unread"] == 1
    assert response.json()["latest"] == newest.id
    assert response.json()["cursor"].startswith(f"{newest.id}-")
    assert response["X-Poll-Interval"] == "45"
    assert response["Cache-Control"] == "private, no-cache"
    assert "Cookie" in response["Vary"]
    assert response["ETag"]


def test_unchanged_poll_gets_304_and_a_change_gets_200(client, user):
    pigeonhole.send(user, "one")
    client.force_login(user)
    etag = client.get(URL)["ETag"]
    again = client.get(URL, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again["X-Poll-Interval"]
    pigeonhole.mark_read(user, pigeonhole.inbox(user)[0].id)  # a read changes the tag too
    changed = client.get(URL, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["unread"] == 0


def test_empty_inbox(client, user):
    client.force_login(user)
    assert client.get(URL).json()["latest"] is None


def test_anonymous_gets_401(client):
    assert client.get(URL).status_code == 401


def test_only_get(client, user):
    client.force_login(user)
    assert client.post(URL).status_code == 405


def test_stream_under_wsgi_answers_204_so_clients_poll(client, user):
    client.force_login(user)
    assert client.get("/messages/stream/").status_code == 204


def test_stream_for_anonymous_is_401_under_wsgi_too(client):
    assert client.get("/messages/stream/").status_code == 401


@pytest.mark.usefixtures("store")
def test_count_answers_the_highest_unread_level_as_the_rest_count_does(client, user):
    client.force_login(user)
    empty = client.get(URL).json()
    assert (empty["max_level"], empty["max_level_tag"]) == (None, None)
    pigeonhole.send(user, "fine", level=pigeonhole.INFO)
    pigeonhole.send(user, "broken", level=pigeonhole.PERSISTENT_ERROR)
    pigeonhole.send(user, "careful", level=pigeonhole.WARNING)
    body = client.get(URL).json()
    assert (body["max_level"], body["max_level_tag"]) == (pigeonhole.PERSISTENT_ERROR, "error")
    rest = client.get("/api/messages/count/").json()
    assert {key: body[key] for key in rest} == rest


@pytest.mark.usefixtures("store")
def test_etag_changes_when_only_the_highest_level_does(client, user):
    """Reading an old error and unreading an old info keep the count and the newest entries."""
    pigeonhole.send(user, "old error", level=pigeonhole.ERROR)
    pigeonhole.send(user, "old info", level=pigeonhole.INFO)
    for n in range(WINDOW):
        pigeonhole.send(user, f"newer {n}")
    error, info = pigeonhole.inbox(user, limit=WINDOW + 2)[-2:][::-1]
    pigeonhole.mark_read(user, [entry.id for entry in pigeonhole.inbox(user) if entry != error])
    client.force_login(user)
    first = client.get(URL)
    assert (first.json()["unread"], first.json()["max_level_tag"]) == (1, "error")
    pigeonhole.mark_read(user, error)
    pigeonhole.mark_unread(user, info)
    again = client.get(URL, headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 200
    assert (again.json()["unread"], again.json()["max_level_tag"]) == (1, "info")


@pytest.mark.db_only
@pytest.mark.usefixtures("store")
def test_count_reads_the_state_once_and_the_newest_entries_once(
    client, user, other_user, django_assert_num_queries
):
    pigeonhole.send(user, "from bob", from_user=other_user)
    client.force_login(user)
    client.get("/")  # the session and the user are loaded once the test client has them
    with django_assert_num_queries(4):  # the session, the user, state(), the newest entries
        client.get(URL)
