"""
The app's changes reach the broker as wake-ups, and only once they commit.

These run the real public API against the database, with the default
in-process broker listening on a real event loop.
"""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import transaction

import pigeonhole
from pigeonhole.backends.base import BaseBackend, Recipients
from pigeonhole.backends.db import DatabaseBackend
from pigeonhole.brokers import publish
from pigeonhole.brokers.base import SYNC
from pigeonhole.conf import get_broker
from pigeonhole.live import close_connections

from .support import next_wakeups, run

pytestmark = pytest.mark.django_db(transaction=True)


def in_thread(func, *args, **kwargs):
    """Run database work off the loop, as an async view does, and let its connection go."""

    def call():
        try:
            return func(*args, **kwargs)
        finally:
            close_connections()

    return sync_to_async(call, thread_sensitive=False)()


def send_and_roll_back(user):
    with transaction.atomic():
        pigeonhole.send(user, "never happened")
        transaction.set_rollback(True)


def test_send_wakes_the_recipients_streams_after_commit(user, other_user):
    async def scenario():
        broker = get_broker()
        mine = broker.subscribe(user.pk)
        theirs = broker.subscribe(other_user.pk)
        assert await next_wakeups(mine) == [(SYNC, ())]
        assert await next_wakeups(theirs) == [(SYNC, ())]
        await in_thread(pigeonhole.send, user, "Hello")
        entry = (await in_thread(pigeonhole.inbox, user))[0]
        assert await next_wakeups(mine) == [("message", (entry.id,))]
        assert theirs.empty()
        mine.close()
        theirs.close()

    run(scenario())


def test_rolled_back_send_publishes_nothing(user):
    async def scenario():
        subscription = get_broker().subscribe(user.pk)
        assert await next_wakeups(subscription) == [(SYNC, ())]
        await in_thread(send_and_roll_back, user)
        await asyncio.sleep(0.1)  # an in-process wake-up would be queued by now
        assert subscription.empty()
        await in_thread(pigeonhole.send, user, "this one counts")
        entry = (await in_thread(pigeonhole.inbox, user))[0]
        assert await next_wakeups(subscription) == [("message", (entry.id,))]
        subscription.close()

    run(scenario())
    assert pigeonhole.inbox(user, state="all")[0].message == "this one counts"


def test_state_changes_carry_their_entry_ids(user):
    first = pigeonhole.send(user, "one")
    assert first.recipient_count == 1
    entry = pigeonhole.inbox(user)[0]

    async def scenario():
        subscription = get_broker().subscribe(user.pk)
        assert await next_wakeups(subscription) == [(SYNC, ())]
        for change, event in [
            (pigeonhole.mark_read, "read"),
            (pigeonhole.mark_unread, "unread"),
            (pigeonhole.archive, "archived"),
            (pigeonhole.unarchive, "unarchived"),
        ]:
            await in_thread(change, user, entry.id)
            assert await next_wakeups(subscription) == [(event, (entry.id,))]
        await in_thread(pigeonhole.mark_read, user, entry.id)
        await next_wakeups(subscription)
        await in_thread(pigeonhole.delete, user, entry.id)
        assert await next_wakeups(subscription) == [("deleted", (entry.id,))]
        subscription.close()

    run(scenario())


class OneReadPerStream(DatabaseBackend):
    """A store that cannot read many users' new entries at once, as one from elsewhere may be."""

    deliveries = BaseBackend.deliveries


def test_a_store_without_deliveries_wakes_each_stream_to_read_for_itself(user, settings):
    """The store that sent the message, the signal's sender, says how streams learn of it."""
    settings.PIGEONHOLE = {
        **settings.PIGEONHOLE,
        "BACKEND": "tests.brokers.test_publish.OneReadPerStream",
    }

    async def scenario():
        mine = get_broker().subscribe(user.pk)
        assert await next_wakeups(mine) == [(SYNC, ())]
        await in_thread(pigeonhole.send, user, "Hello")
        # No entry rides along: the stream reads the store itself.
        assert await next_wakeups(mine) == [("message", ())]
        mine.close()

    run(scenario())


def test_group_send_wakes_each_member_once(user, other_user, group):
    async def scenario():
        broker = get_broker()
        subscriptions = [broker.subscribe(u.pk) for u in (user, other_user)]
        for subscription in subscriptions:
            await next_wakeups(subscription)
        await in_thread(pigeonhole.send, group, "to the group")
        await asyncio.sleep(0.05)
        for member, subscription in zip((user, other_user), subscriptions, strict=True):
            entry = (await in_thread(pigeonhole.inbox, member))[0]
            [wakeup] = await subscription.get()
            assert (wakeup.event, wakeup.ids) == ("message", (entry.id,))
            assert wakeup.entry.message == "to the group"
            assert wakeup.count == 1
            subscription.close()

    run(scenario())


def test_in_process_broker_skips_the_recipients_query_when_nobody_listens(
    user, django_assert_num_queries
):
    recipients = Recipients(queryset=get_user_model().objects.all())
    with django_assert_num_queries(0):
        publish.publish_sent(None, message=None, recipients=recipients)
