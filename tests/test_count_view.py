"""The polling endpoint, for WSGI sites and clients that cannot stream."""

import pytest
from django.urls import reverse

import pigeonhole

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
