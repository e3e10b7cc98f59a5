"""
Across processes: a message sent from another OS process reaches an open stream
through the Redis and PostgreSQL brokers, also with two server processes and
``manage.py pigeonhole_send``; and idle streams hold no database connection.

The other processes must see the test database, so these run on PostgreSQL and
MariaDB; SQLite's test database lives in this process's memory.
"""

import subprocess
import sys
import time
from contextlib import ExitStack

import pytest
from django.contrib.auth.models import Group
from django.db import connection

import pigeonhole

from ..backends.redis_support import redis_url
from ..brokers.support import pg_conninfo, unique_channel
from .server import ROOT, open_stream, process_env, server_processes, session_cookies

pytestmark = pytest.mark.django_db(transaction=True)


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
        [sys.executable, "-m", "tests.live.send_from_process", str(user.pk), text],
        cwd=ROOT,
        env=process_env(database, pigeonhole_settings),
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


@pytest.mark.usefixtures("store")
@pytest.mark.parametrize("broker", [redis_broker, postgres_broker])
def test_command_reaches_a_stream_on_either_server(
    cookies, user, other_user, settings, shared_database, broker
):
    """Two uvicorn processes, the command in a third: both streams get the message."""
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


def drop_listeners(chosen):
    """Cut every server's broker listener on the test's channel, as a broker restart does."""
    options = chosen["BROKER_OPTIONS"]
    if chosen["BROKER"].endswith("RedisBroker"):
        import redis

        name = f"pigeonhole:{options['channel']}"
        with redis.Redis.from_url(options["url"]) as admin:
            ids = [c["id"] for c in admin.client_list() if c.get("name") == name]
            for client_id in ids:
                admin.client_kill_filter(_id=client_id)
        return len(ids)
    import psycopg

    with psycopg.connect(options["conninfo"], autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"pigeonhole listener {options['channel']}"[:63],),
        ).fetchall()
    return len(rows)


@pytest.mark.parametrize("broker", [redis_broker, postgres_broker])
def test_sends_across_a_lost_broker_connection_arrive_once_on_every_server(
    settings, shared_database, broker, django_user_model
):
    """
    Streams spread over two servers; the listeners are cut in the middle of a
    run of sends, to a group and to lists. Every stream gets every message once.
    """
    chosen = {**settings.PIGEONHOLE, "STREAM_KEEPALIVE": 30, **broker()}
    settings.PIGEONHOLE = chosen
    env = process_env(shared_database, chosen)
    staff = Group.objects.create(name="staff")
    users = [django_user_model.objects.create_user(f"member{n}") for n in range(4)]
    staff.user_set.add(*users)
    sends = 30
    with server_processes(env, count=2) as servers, ExitStack() as streams:
        readers = [
            streams.enter_context(open_stream(server, session_cookies(user)))
            for user in users
            for server in servers
        ]
        for reader in readers:
            assert reader.next().data == {"unread": 0}
        for n in range(sends):
            if n == sends // 3:
                assert drop_listeners(chosen) == 2
            pigeonhole.send(staff if n % 2 else users, f"n={n}")
        received = []
        for reader in readers:
            got = []
            while len(got) < sends:
                event = reader.next()
                assert event.event in ("message", "count"), event
                if event.event == "message":
                    got.append(event.data["message"])
            received.append(got)
    for got in received:
        assert sorted(got, key=lambda text: int(text[2:])) == [f"n={n}" for n in range(sends)]
