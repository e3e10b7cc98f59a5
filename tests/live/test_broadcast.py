"""
One message to many open streams: the process reads the store once for all of
them, never once per stream, and every stream gets the message exactly once,
with a cursor that replays exactly what it missed.
"""

import threading
import time
from contextlib import ExitStack, contextmanager

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.backends.utils import CursorWrapper

import pigeonhole
from pigeonhole.live import Cursor

from .server import open_stream, session_cookies

pytestmark = pytest.mark.django_db(transaction=True)

USERS = 10
STREAMS_PER_USER = 2


@pytest.fixture
def server_queries(monkeypatch):
    """
    Return a context manager recording the SQL run outside this (the test's) thread.

    The server runs in this process; every statement of every connection,
    whichever thread opened it, goes through ``CursorWrapper``.
    """
    test_thread = threading.get_ident()
    statements: list[str] = []
    recording = [False]
    original = CursorWrapper._execute_with_wrappers

    def record(self, sql, params, many, executor):
        if recording[0] and threading.get_ident() != test_thread:
            statements.append(sql)
        return original(self, sql, params, many, executor)

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", record)

    @contextmanager
    def recorder():
        recording[0] = True
        try:
            yield statements
        finally:
            recording[0] = False

    return recorder


@pytest.fixture
def members(django_user_model, settings):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "STREAM_MAX_PER_USER": STREAMS_PER_USER}
    staff = Group.objects.create(name="everyone")
    users = [
        django_user_model.objects.create_user(username=f"member{n}", password="password")
        for n in range(USERS)
    ]
    staff.user_set.add(*users)
    return staff, users


def open_all(streams, live, users):
    readers = []
    for user in users:
        cookies = session_cookies(user)
        for _ in range(STREAMS_PER_USER):
            reader = streams.enter_context(open_stream(live, cookies))
            assert reader.next().data == {"unread": 0}
            readers.append((user, reader))
    return readers


@pytest.mark.parametrize("to_group", [True, False], ids=["group", "list"])
def test_a_broadcast_reads_the_store_once_for_every_stream_in_the_process(
    live, members, server_queries, to_group
):
    staff, users = members
    with ExitStack() as streams:
        readers = open_all(streams, live, users)
        time.sleep(0.2)  # let the streams' own opening reads finish
        with server_queries() as statements:
            pigeonhole.send(staff if to_group else users, "to all of you")
            arrivals = [(user, reader.events(2)) for user, reader in readers]
    for user, (message, count) in arrivals:
        entry = pigeonhole.inbox(user)[0]
        assert (message.event, message.data["id"]) == ("message", entry.id)
        assert message.data["message"] == "to all of you"
        assert Cursor.parse(message.id).latest == entry.id
        assert (count.event, count.data) == ("count", {"unread": 1})
    assert len(statements) == 1, statements


def test_a_broadcast_with_a_sender_reads_the_sender_once_too(
    live, members, server_queries, other_user
):
    staff, users = members
    with ExitStack() as streams:
        readers = open_all(streams, live, users[:3])
        time.sleep(0.2)
        with server_queries() as statements:
            pigeonhole.send(staff, "signed", from_user=other_user)
            arrivals = [reader.next() for _, reader in readers]
    assert {event.data["from_user"]["username"] for event in arrivals} == {"bob"}
    assert len(statements) == 2, statements


def test_every_stream_gets_every_message_once_and_replays_exactly_what_it_missed(
    store, live, members
):
    staff, users = members
    sends = 15
    # SQLite's shared in-memory test database locks a table that one thread
    # writes while another reads: there, each send waits for the last to arrive.
    burst = connection.vendor != "sqlite"
    with ExitStack() as streams:
        readers = open_all(streams, live, users)
        received: dict[int, list] = {index: [] for index in range(len(readers))}

        def read_until(count):
            for index, (_, reader) in enumerate(readers):
                while len(received[index]) < count:
                    event = reader.next()
                    if event.event == "message":
                        received[index].append((event.data["message"], event.id))

        for n in range(sends):
            pigeonhole.send(staff if n % 2 else users, f"n={n}")
            if not burst:
                read_until(n + 1)
        read_until(sends)
    for got in received.values():
        assert [text for text, _ in got] == [f"n={n}" for n in range(sends)]
    # A stream that left after the fifth message gets the other ten on reconnect.
    user, _ = readers[0]
    last_seen = received[0][4][1]
    with open_stream(live, session_cookies(user), last_event_id=last_seen) as reader:
        replayed = [reader.next() for _ in range(sends - 5)]
    assert [event.data["message"] for event in replayed] == [f"n={n}" for n in range(5, sends)]
    assert replayed[-1].id == received[0][-1][1]
