"""
The event stream over real HTTP, from a real ASGI server.

Messages are sent from the test's own thread, as a shell or a view in another
request would send them; the stream hears of them through the broker.
"""

import asyncio
import gc
import resource
import threading
import time
from contextlib import ExitStack

import httpx
import pytest
from django.db import transaction

import pigeonhole
from pigeonhole.brokers.base import WakeUp
from pigeonhole.brokers.locmem import LocMemBroker
from pigeonhole.conf import get_backend, get_broker
from pigeonhole.live import FD_RESERVE, Cursor, EventStream, process_stream_limit
from pigeonhole.representation import message_to_dict, senders_for
from pigeonhole.views.actions import EventStreamResponse

from .server import open_stream, session_cookies, stream_gone

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(condition, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def expected(entry):
    return message_to_dict(entry, senders_for([entry]))


def test_stream_opens_with_the_unread_count_and_the_right_headers(live, cookies, user):
    pigeonhole.send(user, "waiting")
    with open_stream(live, cookies) as reader:
        response = reader.response
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        event = reader.next()
        assert reader.retry == 3000
    assert (event.event, event.data) == ("count", {"unread": 1})
    newest = pigeonhole.inbox(user)[0]
    assert Cursor.parse(event.id).latest == newest.id


def test_message_sent_elsewhere_arrives_as_the_shared_json_shape(live, cookies, user, other_user):
    with open_stream(live, cookies) as reader:
        assert reader.next().data == {"unread": 0}
        pigeonhole.send(other_user, "not for alice")
        pigeonhole.send(user, "Hello <b>Alice</b>", from_user=other_user, subject="Hi")
        message, count = reader.events(2)
    entry = pigeonhole.inbox(user)[0]
    assert message.event == "message"
    assert message.data == expected(entry)
    assert message.data["message"] == "Hello <b>Alice</b>"  # text, for the client to insert as text
    assert message.data["from_user"]["username"] == "bob"
    assert Cursor.parse(message.id).latest == entry.id
    assert (count.event, count.data) == ("count", {"unread": 1})


def test_state_changes_arrive_with_their_ids_and_the_new_count(live, cookies, user):
    pigeonhole.send(user, "one")
    entry = pigeonhole.inbox(user)[0]
    with open_stream(live, cookies) as reader:
        assert reader.next().data == {"unread": 1}
        pigeonhole.mark_read(user, entry.id)
        read, count = reader.events(2)
        pigeonhole.archive(user, entry.id)
        archived = reader.next()
    assert (read.event, read.data) == ("read", {"ids": [entry.id]})
    assert (count.event, count.data) == ("count", {"unread": 0})
    assert (archived.event, archived.data) == ("archived", {"ids": [entry.id]})


def test_reconnect_with_last_event_id_replays_exactly_the_missed_messages(live, cookies, user):
    pigeonhole.send(user, "seen")
    with open_stream(live, cookies) as reader:
        last = reader.next().id
    stream_gone(user)
    pigeonhole.send(user, "missed 1")
    pigeonhole.send(user, "missed 2")
    with open_stream(live, cookies, last_event_id=last) as reader:
        first, second, count = reader.events(3)
    assert [first.event, second.event] == ["message", "message"]
    assert [first.data["message"], second.data["message"]] == ["missed 1", "missed 2"]
    assert (count.event, count.data) == ("count", {"unread": 3})
    # Resuming from the second's id replays nothing but the count.
    with open_stream(live, cookies, last_event_id=count.id) as reader:
        assert reader.next().event == "count"


def test_reconnect_after_a_state_change_elsewhere_asks_for_a_reset(live, cookies, user):
    pigeonhole.send(user, "one")
    with open_stream(live, cookies) as reader:
        last = reader.next().id
    stream_gone(user)
    pigeonhole.mark_read(user, pigeonhole.inbox(user)[0].id)  # on another device
    with open_stream(live, cookies, last_event_id=last) as reader:
        reset, count = reader.events(2)
    assert (reset.event, reset.data) == ("reset", {"reason": "changed"})
    assert count.data == {"unread": 0}


def test_reconnect_after_too_many_messages_asks_for_a_reset(live, cookies, user, settings):
    settings.PIGEONHOLE = {"STREAM_KEEPALIVE": 30, "STREAM_REPLAY_LIMIT": 2}
    with open_stream(live, cookies) as reader:
        last = reader.next().id
    stream_gone(user)
    for n in range(3):
        pigeonhole.send(user, f"message {n}")
    with open_stream(live, cookies, last_event_id=last) as reader:
        reset, count = reader.events(2)
    assert (reset.event, reset.data) == ("reset", {"reason": "gap"})
    assert count.data == {"unread": 3}
    assert Cursor.parse(reset.id).latest == pigeonhole.inbox(user)[0].id


def test_a_forged_or_stale_cursor_never_shows_anything_but_the_users_own(
    live, cookies, user, other_user
):
    pigeonhole.send(other_user, "bob's secret")
    with open_stream(live, cookies, last_event_id="0-00000000") as reader:
        event = reader.next()
    assert event.event in ("count", "reset")
    assert "secret" not in str(event.data)


def test_rolled_back_send_emits_nothing(live, cookies, user):
    with open_stream(live, cookies) as reader:
        assert reader.next().data == {"unread": 0}
        with transaction.atomic():
            pigeonhole.send(user, "never happened")
            transaction.set_rollback(True)
        pigeonhole.send(user, "this one counts")
        message = reader.next()
    assert message.data["message"] == "this one counts"


def test_anonymous_gets_401(live):
    response = httpx.get(f"{live.url}/messages/stream/", timeout=5)
    assert response.status_code == 401


def test_streams_beyond_the_per_user_cap_get_429(live, cookies, user, settings):
    settings.PIGEONHOLE = {"STREAM_KEEPALIVE": 30, "STREAM_MAX_PER_USER": 1}
    with open_stream(live, cookies) as reader:
        reader.next()
        response = httpx.get(f"{live.url}/messages/stream/", cookies=cookies, timeout=5)
        assert response.status_code == 429
        assert response.headers["retry-after"]
    # A closed stream frees its slot.
    wait_for(lambda: get_broker().subscriber_count(user.pk) == 0)
    with open_stream(live, cookies) as reader:
        assert reader.next().event == "count"


def test_streams_beyond_the_per_process_cap_get_503(live, cookies, user, other_user, settings):
    settings.PIGEONHOLE = {"STREAM_KEEPALIVE": 30, "STREAM_MAX_PER_PROCESS": 1}
    other = session_cookies(other_user)
    with open_stream(live, cookies) as reader:
        reader.next()
        # Another user, under their own cap, is refused: the process is full.
        response = httpx.get(f"{live.url}/messages/stream/", cookies=other, timeout=5)
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert "server" in response.json()["error"]
    wait_for(lambda: get_broker().subscriber_count() == 0)
    with open_stream(live, other) as reader:
        assert reader.next().event == "count"


def test_idle_streams_hold_no_thread(live, cookies, settings):
    """Django keeps a thread per request until its response ends; a stream lets it go."""
    settings.PIGEONHOLE = {"STREAM_KEEPALIVE": 30, "STREAM_MAX_PER_USER": 20}
    before = threading.active_count()
    with ExitStack() as streams:
        readers = [streams.enter_context(open_stream(live, cookies)) for _ in range(20)]
        for reader in readers:
            assert reader.next().event == "count"
        # The shared pool the streams read through may start a few threads, not one each.
        wait_for(lambda: threading.active_count() - before < 10)


def test_process_cap_stays_below_the_open_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 2000 if hard == resource.RLIM_INFINITY else min(2000, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        room = low - max(FD_RESERVE, low // 10)
        assert process_stream_limit(None) == room
        assert process_stream_limit(100_000) == room
        assert process_stream_limit(50) == 50
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_disconnect_releases_the_subscription(live, cookies, user):
    with open_stream(live, cookies) as reader:
        reader.next()
        assert get_broker().subscriber_count(user.pk) == 1
    wait_for(lambda: get_broker().subscriber_count(user.pk) == 0)


def test_idle_stream_sends_keep_alive_comments(live, cookies, settings):
    settings.PIGEONHOLE = {"STREAM_KEEPALIVE": 0.1}
    with open_stream(live, cookies) as reader:
        reader.next()
        for line in reader.lines:
            if line.startswith(": keep-alive"):
                break


def test_an_idle_stream_sends_a_keep_alive_while_wake_ups_arm_no_timer_of_their_own():
    async def frames():
        broker = LocMemBroker()
        subscription = broker.subscribe(1)
        stream = EventStream(1, subscription, keepalive=0.2)
        generator = aiter(stream)
        try:
            assert (await anext(generator)).startswith(b": pigeonhole\n")
            timer = stream.timer
            subscription.put(WakeUp(1, "read", (5,)))
            # The wake-up is answered (here from the store, for want of a window),
            # and the keep-alive timer set at the start still stands.
            await asyncio.wait_for(anext(generator), 5)
            assert stream.timer is timer
            return await asyncio.wait_for(anext(generator), 5)
        finally:
            await generator.aclose()
            await broker.aclose()

    assert asyncio.run(frames()) == b": keep-alive\n\n"


def test_the_frames_reach_the_asgi_handler_without_djangos_wrapping():
    async def wrapped(content):
        async for part in content:
            yield part

    async def check():
        broker = LocMemBroker()
        response = EventStreamResponse(EventStream(1, broker.subscribe(1)))
        try:
            assert aiter(response) is response.frames  # bytes, one write each
            # A middleware that wrapped the content (as GZipMiddleware does)
            # gets Django's iteration.
            response.streaming_content = wrapped(response.streaming_content)
            assert aiter(response) is not response.frames
        finally:
            await response.frames.aclose()
            await broker.aclose()

    asyncio.run(check())


def test_the_first_stream_leaves_what_the_process_loaded_out_of_garbage_collections(live, cookies):
    with open_stream(live, cookies) as reader:
        reader.next()
        assert gc.get_freeze_count() > 10_000  # Django and the project, at the very least


def test_seen_saved_and_unsaved_arrive_with_their_ids(live, cookies, user):
    pigeonhole.send(user, "one")
    entry = pigeonhole.inbox(user)[0]
    with open_stream(live, cookies) as reader:
        assert reader.next().data == {"unread": 1}
        pigeonhole.mark_seen(user)
        seen = reader.next()
        pigeonhole.save(user, entry.id)
        saved = reader.next()
        pigeonhole.unsave(user, entry.id)
        unsaved = reader.next()
    assert (seen.event, seen.data) == ("seen", {"ids": [entry.id]})
    assert (saved.event, saved.data) == ("saved", {"ids": [entry.id]})
    assert (unsaved.event, unsaved.data) == ("unsaved", {"ids": [entry.id]})


def test_mute_and_unmute_arrive_with_the_thread_key(live, cookies, user):
    with open_stream(live, cookies) as reader:
        assert reader.next().data == {"unread": 0}
        pigeonhole.mute(user, "order-7")
        muted = reader.next()
        pigeonhole.unmute(user, "order-7")
        unmuted = reader.next()
    assert (muted.event, muted.data) == ("muted", {"thread": "order-7"})
    assert (unmuted.event, unmuted.data) == ("unmuted", {"thread": "order-7"})


@pytest.mark.usefixtures("store")
def test_a_threads_new_message_says_which_row_it_replaces(live, cookies, user, other_user):
    pigeonhole.send(user, "first", thread="order-7", from_user=other_user)
    old = pigeonhole.inbox(user)[0]
    with open_stream(live, cookies) as reader:
        assert reader.next().data == {"unread": 1}
        pigeonhole.send(user, "second", thread="order-7")
        message = reader.next()
    new = pigeonhole.inbox(user)[0]
    assert new.id != old.id
    assert message.event == "message"
    assert message.data["id"] == new.id
    assert message.data["replaces"] == old.id
    assert message.data["count"] == 2
    assert message.data["thread"] == "order-7"
    assert len(pigeonhole.inbox(user)) == 1


@pytest.mark.usefixtures("store")
def test_a_replayed_threaded_message_says_which_row_it_replaces(live, cookies, user):
    pigeonhole.send(user, "first", thread="order-7")
    old = pigeonhole.inbox(user)[0]
    with open_stream(live, cookies) as reader:
        last = reader.next().id
    stream_gone(user)
    pigeonhole.send(user, "second", thread="order-7")
    with open_stream(live, cookies, last_event_id=last) as reader:
        message, count = reader.events(2)
    assert (message.event, message.data["replaces"]) == ("message", old.id)
    assert count.data == {"unread": 1}
    # The cursor stays exact: resuming from it replays nothing but the count.
    with open_stream(live, cookies, last_event_id=count.id) as reader:
        assert reader.next().event == "count"


@pytest.mark.usefixtures("store")
def test_after_a_live_thread_move_a_reconnect_replays_nothing(live, cookies, user):
    pigeonhole.send(user, "first", thread="order-7")
    with open_stream(live, cookies) as reader:
        assert reader.next().data == {"unread": 1}
        pigeonhole.send(user, "second", thread="order-7")
        message = reader.next()
    assert message.data["replaces"] is not None
    with open_stream(live, cookies, last_event_id=message.id) as reader:
        event = reader.next()
    assert event.event == "count"


def test_count_events_carry_the_unseen_count_with_badge_unseen(live, cookies, user, settings):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "BADGE": "unseen"}
    pigeonhole.send(user, "one", thread="order-7")
    pigeonhole.mark_seen(user)
    with open_stream(live, cookies) as reader:
        assert reader.next().data == {"unread": 1, "unseen": 0}
        pigeonhole.send(user, "two")
        message, count = reader.events(2)
        assert (message.event, count.data) == ("message", {"unread": 2, "unseen": 1})
        pigeonhole.send(user, "three", thread="order-7")  # replaces a seen row
        message, count = reader.events(2)
        assert (message.event, count.data) == ("message", {"unread": 2, "unseen": 2})
        pigeonhole.mark_seen(user)
        seen, count = reader.events(2)
    assert seen.event == "seen"
    assert count.data == {"unread": 2, "unseen": 0}


def test_a_store_without_replaced_still_says_which_row_is_replaced(live, cookies, user, settings):
    settings.PIGEONHOLE = {
        **settings.PIGEONHOLE,
        "BACKEND": "tests.live.test_replaced.WithoutReplaced",
    }
    pigeonhole.send(user, "first", thread="order-7")
    old = pigeonhole.inbox(user)[0]
    with open_stream(live, cookies) as reader:
        assert reader.next().data == {"unread": 1}
        pigeonhole.send(user, "second", thread="order-7")
        message = reader.next()
    assert (message.event, message.data["replaces"]) == ("message", old.id)
    assert type(get_backend()).__name__ == "WithoutReplaced"
