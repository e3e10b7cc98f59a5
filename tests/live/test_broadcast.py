"""
One message to many open streams: the process reads the store once for all of
them, never once per stream, and every stream gets the message exactly once,
with a cursor that replays exactly what it missed.
"""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.backends.signals import connection_created
from django.db.backends.utils import CursorWrapper

import pigeonhole
from pigeonhole import live
from pigeonhole.conf import get_broker
from pigeonhole.live import READERS, Cursor, EventStream, StoreReads, read_snapshot

from .server import open_stream, session_cookies

pytestmark = pytest.mark.django_db(transaction=True)

USERS = 10
STREAMS_PER_USER = 2


@pytest.fixture
def server_queries(monkeypatch):
    """
    Return a context manager recording the SQL run outside this (the test's) thread.

    The server runs in this process; every statement of every connection,
    whichever thread opened it, goes through ``CursorWrapper``. A new
    connection's own set-up (MariaDB's ``SET SESSION TRANSACTION ISOLATION
    LEVEL`` and its server variables) reads no message and is left out.
    """
    test_thread = threading.get_ident()
    statements: list[str] = []
    recording = [False]
    original = CursorWrapper._execute_with_wrappers

    def record(self, sql, params, many, executor):
        text = sql.lstrip().upper()
        setup = text.startswith("SET ") or text.startswith("SELECT VERSION()")
        if recording[0] and threading.get_ident() != test_thread and not setup:
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


def test_streams_reading_at_once_share_a_few_connections_and_each_get_their_own(members):
    """A reconnect storm: many streams read the store at the same moment."""
    staff, users = members
    for n in range(3):
        pigeonhole.send(staff, f"n={n}")
    pigeonhole.send(users[0], "only the first")
    opened = []

    def note(sender, connection, **kwargs):
        opened.append(connection.alias)

    async def storm():
        streams = [EventStream(user.pk, None) for _ in range(6) for user in users]
        return await asyncio.gather(*(stream.snapshot(0) for stream in streams))

    connection_created.connect(note)
    try:
        snapshots = asyncio.run(storm())
    finally:
        connection_created.disconnect(note)
    expected = {user.pk: read_snapshot(user.pk, 0, 120) for user in users}
    for index, snapshot in enumerate(snapshots):
        user = users[index % len(users)]
        assert [e.id for e in snapshot.entries] == [e.id for e in expected[user.pk].entries]
        assert snapshot.count == expected[user.pk].count
    assert snapshots[0].count == 4 and snapshots[1].count == 3
    if connection.vendor != "sqlite":  # SQLite's in-memory test database is never closed
        assert 0 < len(opened) <= 4  # 60 reads: a few connections, not one each


def test_streams_reading_at_once_read_the_store_in_a_few_statements(members, server_queries):
    """A reconnect storm: the entries and counts of a batch of streams are read together."""
    staff, users = members
    pigeonhole.send(staff, "for everyone")
    pigeonhole.send(users[0], "only the first")

    async def storm():
        streams = [EventStream(user.pk, None) for _ in range(6) for user in users]
        return await asyncio.gather(*(stream.snapshot(0) for stream in streams))

    with server_queries() as statements:
        snapshots = asyncio.run(storm())
    assert [snapshot.count for snapshot in snapshots[: len(users)]] == [2] + [1] * (len(users) - 1)
    # 60 reads; each reader takes up to READ_BATCH of them: two statements a batch.
    assert len(statements) <= 2 * READERS, statements


def test_reads_arriving_while_a_reader_gathers_join_its_batch_which_goes_once_full(monkeypatch):
    """
    A storm's streams come milliseconds apart: a reader woken for one read waits a
    moment (``READ_GATHER``) for others to join its batch, and goes once it is full.
    """
    # However loaded the machine, only the full batch ends the wait.
    monkeypatch.setattr("pigeonhole.live.READ_GATHER", 60)
    monkeypatch.setattr("pigeonhole.live.READ_BATCH", 3)
    batches = []
    read_batch = live._read_batch

    def noted(calls):
        batches.append(len(calls))
        return read_batch(calls)

    monkeypatch.setattr("pigeonhole.live._read_batch", noted)

    async def trickle():
        reads = StoreReads.for_loop()
        first = asyncio.ensure_future(reads.run(lambda: 1))
        while not reads.gathering:  # a reader took the first read up and waits for more
            await asyncio.sleep(0)
        rest = [asyncio.ensure_future(reads.run(lambda n=n: n)) for n in (2, 3)]
        return await asyncio.wait_for(asyncio.gather(first, *rest), timeout=30)

    assert asyncio.run(trickle()) == [1, 2, 3]
    assert batches == [3]


def test_reads_arriving_a_moment_apart_share_a_reader_connection(members, monkeypatch):
    """Reconnects trickle in during a storm: a reader keeps its connection between them."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite's in-memory test database is never closed")
    # However long a loaded machine keeps this loop from running between reads.
    monkeypatch.setattr("pigeonhole.live.READER_IDLE", 60)
    _, users = members
    opened = []

    def note(sender, connection, **kwargs):
        opened.append(connection.alias)

    async def trickle():
        snapshots = []
        for user in users[:5]:
            snapshots.append(await EventStream(user.pk, None).snapshot(0))
            await asyncio.sleep(0.02)  # no read waits now: the reader is idle
        return snapshots

    connection_created.connect(note)
    try:
        snapshots = asyncio.run(trickle())
    finally:
        connection_created.disconnect(note)
    assert [snapshot.count for snapshot in snapshots] == [0] * 5
    assert len(opened) == 1


def test_a_read_queued_as_an_idle_readers_wait_ends_is_still_read():
    """The idle reader's wait timed out, and it has not run since: the read still goes."""

    async def read_after_a_timeout():
        reads = StoreReads.for_loop()
        timed_out = asyncio.get_running_loop().create_future()
        timed_out.cancel()
        reads.idle.append(timed_out)
        return await asyncio.wait_for(reads.run(lambda: "read"), timeout=30)

    assert asyncio.run(read_after_a_timeout()) == "read"


def test_streams_opening_at_once_load_their_users_on_a_few_connections(live, members):
    """A reconnect storm: each request's user is loaded with the others, not on its own."""
    _, users = members
    cookies = [session_cookies(user) for user in users for _ in range(STREAMS_PER_USER)]
    opened = []

    def note(sender, connection, **kwargs):
        opened.append(threading.get_ident())

    started = threading.Barrier(len(cookies))

    def open_one(cookie):
        started.wait(timeout=30)
        with open_stream(live, cookie) as reader:
            return reader.next().data

    connection_created.connect(note)
    try:
        with ThreadPoolExecutor(len(cookies)) as pool:
            counts = list(pool.map(open_one, cookies))
    finally:
        connection_created.disconnect(note)
    assert counts == [{"unread": 0}] * len(cookies)
    # The user and the store are read on the process's few reading threads, not
    # on a thread (and a connection) of each request's own. Threads, not
    # connections, are counted: a reader lets its connection go whenever no
    # stream waits, so on a loaded machine, where the streams arrive spread
    # out, it may open several in turn.
    assert len(set(opened)) <= 8, opened


@pytest.mark.parametrize("served_by", ["live", "live_streams"])
def test_a_reconnect_storm_replays_every_stream_exactly_what_it_missed(request, served_by, members):
    """
    Every stream drops at once (a deploy) and comes back at once, while sends go on;
    through Django's handler and through ``pigeonhole.asgi.live_streams``.
    """
    live = request.getfixturevalue(served_by)
    staff, users = members
    with ExitStack() as streams:
        readers = open_all(streams, live, users)
        pigeonhole.send(staff, "n=0")
        cursors = []
        for _, reader in readers:
            event = reader.next()
            assert event.data["message"] == "n=0"
            cursors.append(event.id)
    # Every stream is gone from the server too: on SQLite, a process's read of a
    # message for a stream still closing would lock the table the next send writes.
    deadline = time.monotonic() + 10
    while get_broker().subscriber_count() and time.monotonic() < deadline:
        time.sleep(0.02)
    for n in range(1, 4):  # while every stream is away
        pigeonhole.send(staff if n % 2 else users, f"n={n}")
    during = connection.vendor != "sqlite"  # SQLite's test database locks under a writer
    total = 7 if during else 4
    started = threading.Barrier(len(readers) + 1)
    cookies = {user.pk: session_cookies(user) for user in users}

    def come_back(index):
        user, _ = readers[index]
        with open_stream(live, cookies[user.pk], last_event_id=cursors[index]) as reader:
            started.wait(timeout=30)
            got = []
            while len(got) < total - 1:
                event = reader.next()
                if event.event == "message":
                    got.append(event.data["message"])
            return got

    with ThreadPoolExecutor(len(readers)) as pool:
        results = [pool.submit(come_back, index) for index in range(len(readers))]
        started.wait(timeout=30)
        if during:
            for n in range(4, 7):
                pigeonhole.send(staff, f"n={n}")
        received = [result.result(timeout=60) for result in results]
    for got in received:
        assert got == [f"n={n}" for n in range(1, total)]
