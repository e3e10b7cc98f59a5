"""The Redis broker against the shared contract, then surviving a lost connection."""

import asyncio

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from pigeonhole.brokers.base import SYNC, WakeUp
from pigeonhole.brokers.redis import RedisBroker

from ..backends.redis_support import RedisServer, redis_url
from .contract import BrokerContract
from .support import next_wakeups, run, unique_channel


@pytest.fixture
def make_broker():
    url = redis_url()
    made = []

    def make(**options):
        options.setdefault("url", url)
        options.setdefault("channel", unique_channel())
        options.setdefault("backoff_initial", 0.05)
        broker = RedisBroker(**options)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()


class TestRedisBroker(BrokerContract):
    pass


@pytest.fixture
def servers():
    """Private redis-servers that a test may kill and restart; all stopped afterwards."""
    started = [RedisServer().start()]
    yield started
    for server in started:
        server.stop()


def test_listener_reconnects_after_client_kill(make_broker, servers):
    broker = make_broker(url=servers[0].url)

    async def scenario():
        subscription = broker.subscribe(1)
        assert await next_wakeups(subscription) == [(SYNC, ())]
        admin = redis.Redis.from_url(servers[0].url)
        killed = admin.client_kill_filter(_type="pubsub")
        admin.close()
        assert killed == 1
        # The listener notices, reconnects, and asks the stream to re-read the store.
        assert await next_wakeups(subscription) == [(SYNC, ())]
        broker.publish([WakeUp(1, "message")])
        assert await next_wakeups(subscription) == [("message", ())]
        subscription.close()

    run(scenario())


def test_listener_reconnects_with_backoff_after_a_server_restart(make_broker, servers, caplog):
    server = servers[0]
    broker = make_broker(url=server.url, backoff_max=0.2)

    async def scenario():
        subscription = broker.subscribe(1)
        assert await next_wakeups(subscription) == [(SYNC, ())]
        server.stop()
        await asyncio.sleep(0.5)  # several failed attempts while it is down
        assert not broker.connected
        # Lost while the server is down, and logged, not raised: the store has the change.
        await asyncio.to_thread(broker.publish, [WakeUp(1, "message")])
        servers.append(RedisServer(port=server.port).start())
        assert await next_wakeups(subscription, timeout=5) == [(SYNC, ())]
        broker.publish([WakeUp(1, "message")])
        assert await next_wakeups(subscription) == [("message", ())]
        subscription.close()

    run(scenario())
    assert "could not publish" in caplog.text


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({}, "needs the address"),
        ({"url": "http://x"}, "not a Redis URL"),
        ({"url": "redis://x", "channel": ""}, "channel"),
        ({"url": "redis://x", "chanel": "x"}, "unknown option"),
        ({"url": "redis://x", "queue_size": 0}, "positive"),
    ],
)
def test_bad_options_are_refused_with_the_fix(options, match):
    with pytest.raises(ImproperlyConfigured, match=match):
        RedisBroker(**options)


def test_nothing_connects_until_used():
    broker = RedisBroker(url="redis://127.0.0.1:1/0")
    assert broker._client is None and broker._listener is None


def test_repr_names_the_server_without_its_password_and_the_channel():
    broker = RedisBroker(url="redis://:hunter2@cache:6379/3", channel="site-a")
    assert "hunter2" not in repr(broker)
    assert repr(broker).startswith("<RedisBroker redis://")
    assert repr(broker).endswith("@cache:6379/3 channel='site-a'>")
