"""
``pigeonhole.asgi.live_streams``: the stream route answered on the event loop,
with Django's own session and user checks, every other request left to Django.
"""

import time

import httpx
import pytest
from django.conf import settings
from django.core.signals import request_started

import pigeonhole
from pigeonhole.asgi import _is_stream_path, _path_info
from pigeonhole.conf import get_broker
from pigeonhole.live import Cursor
from pigeonhole.views.actions import stream

from .server import open_stream, session_cookies, stream_gone

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def started():
    """The paths of the requests Django's handler served (its ``request_started``)."""
    paths = []

    def note(sender, scope=None, **kwargs):
        paths.append(scope["path"] if scope else None)

    request_started.connect(note)
    yield paths
    request_started.disconnect(note)


def test_the_stream_is_served_by_the_entry_point_and_the_rest_by_django(
    live_streams, cookies, user, started
):
    pigeonhole.send(user, "waiting")
    with open_stream(live_streams, cookies) as reader:
        assert reader.response.headers["content-type"].startswith("text/event-stream")
        assert reader.response.headers["cache-control"] == "no-cache"
        event = reader.next()
    assert (event.event, event.data) == ("count", {"unread": 1})
    assert started == []  # Django's handler never saw the stream
    response = httpx.get(f"{live_streams.url}/messages/count/", cookies=cookies, timeout=5)
    assert response.json()["unread"] == 1
    assert started == ["/messages/count/"]


def test_a_stream_without_a_session_is_refused(live_streams, transactional_db):
    with open_stream(live_streams, None) as reader:
        assert reader.response.status_code == 401
        reader.response.read()
        assert reader.response.json() == {"error": "Log in to receive messages."}
    forged = {settings.SESSION_COOKIE_NAME: "no-such-session"}
    with open_stream(live_streams, forged) as reader:
        assert reader.response.status_code == 401


def test_a_session_from_before_a_password_change_is_refused_and_its_cookie_deleted(
    live_streams, cookies, user
):
    """Django's session hash check: a changed password logs every other session out."""
    user.set_password("changed")
    user.save()
    with open_stream(live_streams, cookies) as reader:
        assert reader.response.status_code == 401
        deleted = reader.response.headers["set-cookie"]
    assert deleted.startswith(f'{settings.SESSION_COOKIE_NAME}="";')
    assert "expires=Thu, 01 Jan 1970" in deleted


def test_a_stream_never_shows_another_users_events(live_streams, cookies, user, other_user):
    with (
        open_stream(live_streams, cookies) as alice,
        open_stream(live_streams, session_cookies(other_user)) as bob,
    ):
        assert alice.next().data == {"unread": 0}
        assert bob.next().data == {"unread": 0}
        pigeonhole.send(other_user, "for bob")
        pigeonhole.send(user, "for alice")
        message, count = alice.events(2)
        bobs = bob.events(2)
    assert (message.data["message"], count.data) == ("for alice", {"unread": 1})
    assert bobs[0].data["message"] == "for bob"


def test_a_stream_resumes_from_last_event_id(live_streams, cookies, user):
    with open_stream(live_streams, cookies) as reader:
        start = reader.next()
        pigeonhole.send(user, "seen")
        seen, _ = reader.events(2)
    assert Cursor.parse(start.id) is not None
    stream_gone(user)
    for n in range(3):
        pigeonhole.send(user, f"missed {n}")
    with open_stream(live_streams, cookies, last_event_id=seen.id) as reader:
        replayed = [reader.next() for _ in range(4)]
    assert [event.data.get("message") for event in replayed[:3]] == [
        f"missed {n}" for n in range(3)
    ]
    assert replayed[3].data == {"unread": 4}


def test_only_the_stream_route_is_intercepted():
    assert _is_stream_path("/messages/stream/", stream)
    assert not _is_stream_path("/messages/count/", stream)
    assert not _is_stream_path("/no/such/page/", stream)
    assert _path_info({"path": "/site/messages/stream/", "root_path": "/site"}) == (
        "/messages/stream/"
    )


def test_a_client_that_leaves_gives_up_its_subscription(live_streams, cookies):
    broker = get_broker()
    before = broker.subscriber_count()
    with open_stream(live_streams, cookies) as reader:
        reader.next()
        assert broker.subscriber_count() == before + 1
    deadline = time.monotonic() + 10
    while broker.subscriber_count() > before:
        assert time.monotonic() < deadline, "the stream kept its subscription"
        time.sleep(0.02)


def test_a_host_outside_allowed_hosts_is_refused(live_streams, cookies):
    response = httpx.get(
        f"{live_streams.url}/messages/stream/",
        headers={"Host": "evil.example"},
        cookies=cookies,
        timeout=5,
    )
    assert response.status_code == 400
