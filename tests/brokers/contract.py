"""
The behaviour every broker shares, written once.

Each broker's test module subclasses ``BrokerContract`` and provides a
``make_broker`` fixture that builds brokers on a channel of their own, as
Django's messages tests do with ``BaseTests``. Scenarios run on a real event
loop against the real server.
"""

from __future__ import annotations

import asyncio
import threading
import tracemalloc

import pytest

from pigeonhole.brokers.base import (
    SYNC,
    ProcessAtCapacity,
    Sent,
    TooManySubscriptions,
    WakeUp,
)

from .support import next_wakeups, run


class BrokerContract:
    @pytest.fixture
    def broker(self, make_broker):
        return make_broker()

    async def connected(self, broker, user_id="1", **kwargs):
        """Subscribe and wait for the SYNC that says the listener is connected."""
        subscription = broker.subscribe(user_id, **kwargs)
        assert await next_wakeups(subscription) == [(SYNC, ())]
        return subscription

    def test_first_wakeup_is_sync_once_connected(self, broker):
        async def scenario():
            subscription = await self.connected(broker)
            assert broker.connected
            subscription.close()

        run(scenario())

    def test_wakeup_reaches_every_stream_of_its_user_only(self, broker):
        async def scenario():
            first = await self.connected(broker, "7")
            second = await self.connected(broker, "7")
            other = await self.connected(broker, "8")
            broker.publish([WakeUp(7, "read", (12, 13))])
            assert await next_wakeups(first) == [("read", (12, 13))]
            assert await next_wakeups(second) == [("read", (12, 13))]
            broker.publish([WakeUp(8, "message")])
            assert await next_wakeups(other) == [("message", ())]
            assert first.empty() and second.empty()
            for subscription in (first, second, other):
                subscription.close()

        run(scenario())

    def test_publish_from_another_thread(self, broker):
        """Publishing happens in sync code (on_commit, a worker thread), streams on the loop."""

        async def scenario():
            subscription = await self.connected(broker)
            thread = threading.Thread(target=broker.publish, args=([WakeUp(1, "message")],))
            thread.start()
            assert await next_wakeups(subscription) == [("message", ())]
            thread.join()
            subscription.close()

        run(scenario())

    def test_user_ids_of_any_type_match_as_text(self, broker):
        async def scenario():
            subscription = await self.connected(broker, 42)
            broker.publish([WakeUp("42", "deleted", (5,))])
            assert await next_wakeups(subscription) == [("deleted", (5,))]
            subscription.close()

        run(scenario())

    def test_many_wakeups_are_split_into_payloads_and_all_arrive(self, make_broker):
        broker = make_broker(queue_size=5000)

        async def scenario():
            subscription = await self.connected(broker, "1")
            wakeups = [WakeUp(1, "read", (n,)) for n in range(2000)]
            assert len(list(broker.encode(wakeups))) > 1
            broker.publish(wakeups)
            got: list = []
            while len(got) < 2000:
                got += await next_wakeups(subscription)
            assert got == [("read", (n,)) for n in range(2000)]
            subscription.close()

        run(scenario())

    def test_wakeup_too_big_for_a_payload_becomes_sync(self, broker):
        async def scenario():
            subscription = await self.connected(broker)
            broker.publish([WakeUp(1, "read", tuple(range(10_000)))])
            assert await next_wakeups(subscription) == [(SYNC, ())]
            subscription.close()

        run(scenario())

    def test_full_queue_is_replaced_by_one_sync(self, make_broker):
        broker = make_broker(queue_size=3)

        async def scenario():
            subscription = await self.connected(broker)
            broker.publish([WakeUp(1, "read", (n,)) for n in range(10)])
            await asyncio.sleep(0.3)  # let all ten arrive: seven find the queue full
            assert await next_wakeups(subscription) == [(SYNC, ())]
            broker.publish([WakeUp(1, "read", (99,))])
            assert await next_wakeups(subscription) == [("read", (99,))]
            subscription.close()

        run(scenario())

    def test_limit_caps_one_users_streams_in_this_process(self, broker):
        async def scenario():
            subscriptions = [broker.subscribe(1, limit=2) for _ in range(2)]
            with pytest.raises(TooManySubscriptions):
                broker.subscribe(1, limit=2)
            other = broker.subscribe(2, limit=2)  # another user is not affected
            subscriptions[0].close()
            subscriptions.append(broker.subscribe(1, limit=2))  # a freed slot is reusable
            assert broker.subscriber_count(1) == 2
            for subscription in [*subscriptions, other]:
                subscription.close()
            assert broker.subscriber_count() == 0

        run(scenario())

    def test_process_limit_caps_every_users_streams_in_this_process(self, broker):
        async def scenario():
            first = broker.subscribe(1, limit=5, process_limit=2)
            second = broker.subscribe(2, limit=5, process_limit=2)
            with pytest.raises(ProcessAtCapacity):
                broker.subscribe(3, limit=5, process_limit=2)
            with pytest.raises(ProcessAtCapacity):  # the user has room; the process has not
                broker.subscribe(1, limit=5, process_limit=2)
            assert broker.subscriber_count() == 2
            first.close()
            first.close()  # closing twice frees one slot, not two
            third = broker.subscribe(3, limit=5, process_limit=2)
            assert broker.subscriber_count() == 2
            with pytest.raises(ProcessAtCapacity):
                broker.subscribe(4, process_limit=2)
            for subscription in (second, third):
                subscription.close()
            assert broker.subscriber_count() == 0

        run(scenario())

    def test_closed_subscription_hears_nothing_and_last_one_stops_the_listener(self, broker):
        async def scenario():
            keep = await self.connected(broker, "1")
            gone = await self.connected(broker, "1")
            gone.close()
            gone.close()  # idempotent
            broker.publish([WakeUp(1, "message")])
            assert await next_wakeups(keep) == [("message", ())]
            assert gone.empty()
            listener = broker._listener
            keep.close()
            await asyncio.sleep(0.05)
            assert broker._listener is None and listener.cancelled()

        run(scenario())

    def test_a_new_event_loop_gets_a_new_listener(self, broker):
        """Each test (or server restart) runs its own loop; the broker follows it."""

        async def scenario():
            subscription = await self.connected(broker)
            broker.publish([WakeUp(1, "message")])
            assert await next_wakeups(subscription) == [("message", ())]
            subscription.close()

        run(scenario())
        run(scenario())

    def test_malformed_payload_is_ignored(self, broker, caplog):
        async def scenario():
            subscription = await self.connected(broker)
            broker.send("not json")
            broker.send('[["1","message",[],null]]')
            assert await next_wakeups(subscription) == [("message", ())]
            subscription.close()

        run(scenario())
        assert "malformed" in caplog.text

    def test_a_new_message_is_one_payload_for_all_its_recipients(self, broker):
        sent = Sent(40, [7, "8", 9])
        [payload] = broker.encode([sent, WakeUp(7, "read", (3,))])
        assert broker.decode(payload) == [Sent(40, ("7", "8", "9")), WakeUp("7", "read", (3,))]

    def test_recipients_too_many_for_a_payload_are_left_to_the_store(self, broker):
        [payload] = broker.encode([Sent(40, range(5000))])
        assert broker.decode(payload) == [Sent(40, None)]
        assert len(payload) < 100

    def test_a_new_message_for_nobody_here_reads_nothing(self, broker):
        async def scenario():
            subscription = await self.connected(broker, "7")
            broker.publish([Sent(40, ["8"])])  # no entry read: nobody here got it
            broker.publish([WakeUp(7, "read", (3,))])
            assert await next_wakeups(subscription) == [("read", (3,))]
            assert not broker._pending_sent and broker._resolver is None
            subscription.close()

        run(scenario())

    def test_an_idle_subscription_costs_little_memory(self, broker):
        """Ten thousand streams in one process: each one's mailbox must stay small."""

        async def scenario():
            first = await self.connected(broker, "0")
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                subscriptions = [broker.subscribe(str(n)) for n in range(1, 1001)]
                await asyncio.sleep(0)  # their first SYNC is queued
                each = (tracemalloc.get_traced_memory()[0] - before) / len(subscriptions)
            finally:
                tracemalloc.stop()
            for subscription in [first, *subscriptions]:
                subscription.close()
            return each

        each = run(scenario())
        assert each < 1024, f"{each:.0f} bytes a subscription"
