"""
Across processes: a message sent from another OS process reaches an open stream
through the Redis and PostgreSQL brokers, and idle streams hold no database
connection.

The sending process must see the test database, so these run on PostgreSQL and
MariaDB; SQLite's test database lives in this process's memory.
"""

import json
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.db import connection

import pigeonhole

from ..backends.redis_support import redis_url
from ..brokers.support import pg_conninfo, unique_channel
from .server import open_stream

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shared_database():
    if connection.vendor == "sqlite":
        pytest.skip("another process cannot see SQLite's in-memory test database")
    return connection.settings_dict["NAME"]


def redis_broker():
    return {
        "BROKER": "pigeonhole.brokers.redis.RedisBroker",
        "BROKER_OPTIONS": {"url": redis_url(), "channel": unique_channel()},
    }


def postgres_broker():
    return {
        "BROKER": "pigeonhole.brokers.postgres.PostgresBroker",
        "BROKER_OPTIONS": {"conninfo": pg_conninfo(), "channel": unique_channel()},
    }


def send_from_another_process(database, pigeonhole_settings, user, text):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.live.send_from_process",
            database,
            json.dumps(pigeonhole_settings),
            str(user.pk),
            text,
        ],
        cwd=ROOT,
        check=True,
        timeout=60,
    )


@pytest.mark.parametrize("broker", [redis_broker, postgres_broker])
def test_message_sent_from_another_process_arrives(
    live, cookies, user, settings, shared_database, broker
):
    chosen = broker()
    settings.PIGEONHOLE = {"STREAM_KEEPALIVE": 30, **chosen}
    with open_stream(live, cookies) as reader:
        assert reader.next().data == {"unread": 0}
        send_from_another_process(shared_database, chosen, user, "from a worker")
        message, count = reader.events(2)
    assert message.event == "message"
    assert message.data["message"] == "from a worker"
    assert message.data["id"] == pigeonhole.inbox(user)[0].id
    assert count.data == {"unread": 1}


def test_idle_streams_hold_no_database_connection(live, cookies, user, settings):
    if connection.vendor != "postgresql":
        pytest.skip("counts connections in pg_stat_activity")
    settings.PIGEONHOLE = {"STREAM_KEEPALIVE": 30, "STREAM_MAX_PER_USER": 50}

    def connections_to_test_database():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
            return cursor.fetchone()[0]

    before = connections_to_test_database()
    with ExitStack() as streams:
        readers = [streams.enter_context(open_stream(live, cookies)) for _ in range(50)]
        for reader in readers:
            reader.next()
        settled(lambda: connections_to_test_database() <= before)
        pigeonhole.send(user, "wakes all fifty")  # each reads the store, then lets go
        for reader in readers:
            assert [event.event for event in reader.events(2)] == ["message", "count"]
        settled(lambda: connections_to_test_database() <= before)


def settled(condition, timeout=3.0):
    """Wait for ``condition``: a closed connection leaves pg_stat_activity a moment later."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "connections were not released"
        time.sleep(0.05)
