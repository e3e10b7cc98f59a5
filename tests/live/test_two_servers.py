"""
Two server processes, one message: sent by ``manage.py pigeonhole_send`` from a
third process, it reaches a stream on either server, through the Redis broker
and through the PostgreSQL broker.

Every process is separate, as in a deployment with several workers and a
cron job: the servers are uvicorn subprocesses, the command runs as
``python -m django`` (what ``manage.py`` does). All of them must see the test
database, so these run on PostgreSQL and MariaDB; SQLite's test database lives
in this process's memory.
"""

import subprocess
import sys

import pytest
from django.db import connection

import pigeonhole

from ..backends.redis_support import redis_url
from ..brokers.support import pg_conninfo, unique_channel
from .server import ROOT, open_stream, process_env, server_processes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("store")]


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


def pigeonhole_send(env, *args):
    """Run the management command as its own process, as an operator or cron job would."""
    result = subprocess.run(
        [sys.executable, "-m", "django", "pigeonhole_send", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("broker", [redis_broker, postgres_broker])
def test_command_reaches_a_stream_on_either_server(
    cookies, user, other_user, settings, shared_database, broker
):
    chosen = {**settings.PIGEONHOLE, "STREAM_KEEPALIVE": 30, **broker()}
    settings.PIGEONHOLE = chosen  # this process reads the store with the servers' backend
    env = process_env(shared_database, chosen)
    with (
        server_processes(env, count=2) as (first, second),
        open_stream(first, cookies) as on_first,
        open_stream(second, cookies) as on_second,
    ):
        assert on_first.next().data == {"unread": 0}
        assert on_second.next().data == {"unread": 0}
        out = pigeonhole_send(env, "alice", "--message", "Maintenance tonight at 22:00")
        assert "to 1 user" in out
        entry = pigeonhole.inbox(user)[0]
        for reader in (on_first, on_second):
            message, count = reader.events(2)
            assert message.event == "message"
            assert message.data["id"] == entry.id
            assert message.data["message"] == "Maintenance tonight at 22:00"
            assert count.event == "count"
            assert count.data == {"unread": 1}
    assert pigeonhole.inbox(other_user) == []
