"""
The pages, the polling endpoint and the actions when the message store is down.

A real ``redis-server`` holds the inbox, then is killed: every view answers 503
with ``Retry-After``, so clients back off instead of retrying at once, and a
page says so in words instead of a bare server error.
"""

import pytest

import pigeonhole
from pigeonhole.conf import get_backend
from pigeonhole.exceptions import BackendUnavailable

from .backends.redis_support import RedisServer, delete_keys, unique_prefix

pytestmark = pytest.mark.django_db

JSON = {"Accept": "application/json"}


@pytest.fixture
def entry_id(settings, user, client):
    """Give alice one stored message, then stop the store; return the message's id."""
    server = RedisServer().start()
    prefix = unique_prefix("down")
    settings.PIGEONHOLE = {
        **settings.PIGEONHOLE,
        "BACKEND": "pigeonhole.backends.redis.RedisBackend",
        "OPTIONS": {
            "url": server.url,
            "key_prefix": prefix,
            "socket_connect_timeout": 0.5,
            "socket_timeout": 0.5,
        },
    }
    try:
        pigeonhole.send(user, "Before the outage")
        [entry] = pigeonhole.inbox(user)
        client.force_login(user)
        server.stop()
        yield entry.id
    finally:
        get_backend().close()
        server.stop()
        if server.process is not None:
            delete_keys(server.url, prefix)


def retry_after():
    return str(BackendUnavailable.retry_after)


def test_the_store_is_really_down(entry_id, user):
    with pytest.raises(BackendUnavailable):
        pigeonhole.unread_count(user)


def test_inbox_page_answers_503_with_a_page_and_retry_after(client, entry_id):
    response = client.get("/messages/?state=all")
    assert response.status_code == 503
    assert response["Retry-After"] == retry_after()
    assert response["Content-Type"].startswith("text/html")
    assert response.templates[0].name == "pigeonhole/unavailable.html"
    page = response.content.decode()
    assert "<title>" in page and "Try again in 30 seconds" in page
    assert '<a href="/messages/?state=all">' in page
    assert "redis://" not in page and "Traceback" not in page  # nothing of the server's insides


@pytest.mark.parametrize("headers", [JSON, {}])
def test_count_answers_503_json_with_retry_after(client, entry_id, headers):
    response = client.get("/messages/count/", headers=headers)
    assert response.status_code == 503
    assert response["Retry-After"] == retry_after()
    assert "error" in response.json()


@pytest.mark.parametrize(
    "path",
    ["/messages/{id}/read/", "/messages/{id}/archive/", "/messages/read-all/", "/messages/bulk/"],
)
def test_actions_answer_503_with_retry_after(client, entry_id, path):
    path = path.format(id=entry_id)
    data = {"action": "read", "ids": [entry_id], "message": "Thanks"}
    script = client.post(path, data, headers=JSON)
    assert script.status_code == 503
    assert script["Retry-After"] == retry_after()
    assert "error" in script.json()
    form = client.post(path, {**data, "next": "/messages/?state=<all>"})
    assert form.status_code == 503
    assert form["Retry-After"] == retry_after()
    assert '<a href="/messages/?state=&lt;all&gt;">Try again</a>' in form.content.decode()


def test_reply_answers_503(client, entry_id):
    response = client.post(f"/messages/{entry_id}/reply/", {"message": "Thanks"}, headers=JSON)
    assert response.status_code == 503
    assert response["Retry-After"] == retry_after()


def test_rest_api_answers_503_with_the_same_retry_after(client, entry_id):
    response = client.get("/api/messages/count/", headers=JSON)
    assert response.status_code == 503
    assert response["Retry-After"] == retry_after()
    listing = client.get("/api/messages/", headers=JSON)
    assert listing.status_code == 503
    assert listing["Retry-After"] == retry_after()


def test_a_site_page_with_the_badge_still_renders(client, entry_id, caplog):
    """The badge sits on every page of a site: an outage shows 0 and is logged, never a 500."""
    response = client.get("/show/?alerts=badge&add=Saved")
    assert response.status_code == 200
    assert response.content.decode().startswith("<b>0</b>")
    assert "Saved" in response.content.decode()
    assert "badge" in caplog.text
