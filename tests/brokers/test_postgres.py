"""The PostgreSQL broker against the shared contract, then surviving a lost connection."""

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured

from pigeonhole.brokers.base import SYNC, WakeUp
from pigeonhole.brokers.postgres import PostgresBroker

from .contract import BrokerContract
from .support import next_wakeups, pg_conninfo, run, unique_channel


@pytest.fixture
def conninfo():
    return pg_conninfo()


@pytest.fixture
def make_broker(conninfo):
    made = []

    def make(**options):
        options.setdefault("conninfo", conninfo)
        options.setdefault("channel", unique_channel())
        options.setdefault("backoff_initial", 0.05)
        broker = PostgresBroker(**options)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()


class TestPostgresBroker(BrokerContract):
    pass


def _terminate(conninfo: str, application_name: str) -> int:
    with psycopg.connect(conninfo, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)


def test_listener_reconnects_after_its_backend_is_terminated(make_broker, conninfo):
    broker = make_broker()

    async def scenario():
        subscription = broker.subscribe(1)
        assert await next_wakeups(subscription) == [(SYNC, ())]
        assert _terminate(conninfo, broker.listener_name) == 1
        # The listener notices, reconnects, and asks the stream to re-read the store.
        assert await next_wakeups(subscription) == [(SYNC, ())]
        broker.publish([WakeUp(1, "message")])
        assert await next_wakeups(subscription) == [("message", ())]
        subscription.close()

    run(scenario())


def test_publisher_reconnects_after_its_backend_is_terminated(make_broker, conninfo):
    broker = make_broker()

    async def scenario():
        subscription = broker.subscribe(1)
        assert await next_wakeups(subscription) == [(SYNC, ())]
        broker.publish([WakeUp(1, "read", (1,))])
        assert await next_wakeups(subscription) == [("read", (1,))]
        with psycopg.connect(conninfo, autocommit=True) as admin:
            pid = broker._conn.info.backend_pid
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        broker.publish([WakeUp(1, "read", (2,))])
        assert await next_wakeups(subscription) == [("read", (2,))]
        subscription.close()

    run(scenario())


def test_without_conninfo_it_connects_like_djangos_database(settings):
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        with pytest.raises(ImproperlyConfigured, match="conninfo"):
            PostgresBroker().connection_params()
        return
    params = PostgresBroker().connection_params()
    from django.db import connection

    assert params["dbname"] == connection.settings_dict["NAME"]
    assert "cursor_factory" not in params and "context" not in params


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"channel": ""}, "channel"),
        ({"channel": "x" * 64}, "63"),
        ({"conninfo": 5}, "conninfo"),
        ({"backoff_max": -1}, "positive"),
        ({"url": "postgres://"}, "unknown option"),
    ],
)
def test_bad_options_are_refused_with_the_fix(options, match):
    with pytest.raises(ImproperlyConfigured, match=match):
        PostgresBroker(**options)


def test_repr_names_the_channel():
    assert repr(PostgresBroker(channel="site-a")) == "<PostgresBroker channel='site-a'>"
