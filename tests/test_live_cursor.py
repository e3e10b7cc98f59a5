"""The stream's cursor, as pure values: no server, no database."""

import pytest

from pigeonhole.live import WINDOW, Cursor, FreezePolicy, window_digest
from pigeonhole.message import StoredMessage


def entry(id, read=False):
    from django.utils import timezone

    return StoredMessage(
        id=id, level=21, message=f"m{id}", read_at=timezone.now() if read else None
    )


def test_cursor_round_trips():
    cursor = Cursor(57, "1a2b3c4d")
    assert str(cursor) == "57-1a2b3c4d"
    assert Cursor.parse(" 57-1a2b3c4d ") == cursor


@pytest.mark.parametrize(
    "text", [None, "", "57", "x-1a2b3c4d", "57-XYZ", "57-1a2b3c4d5", "-1-1a2b3c4d"]
)
def test_anything_else_is_a_fresh_start(text):
    assert Cursor.parse(text) is None


def test_digest_changes_with_the_read_state_of_the_window():
    entries = [entry(n) for n in range(30, 0, -1)]  # newest first
    before = window_digest(entries, 30)
    entries[3] = entry(27, read=True)
    assert window_digest(entries, 30) != before


def test_digest_changes_when_an_entry_leaves_the_window():
    entries = [entry(n) for n in range(30, 0, -1)]
    before = window_digest(entries, 30)
    assert window_digest([e for e in entries if e.id != 25], 30) != before


def test_digest_ignores_newer_entries_and_older_than_the_window():
    entries = [entry(n) for n in range(30, 0, -1)]
    before = window_digest(entries, 30)
    newer = [entry(32), entry(31), *entries]
    assert window_digest(newer, 30) == before
    entries[WINDOW] = entry(entries[WINDOW].id, read=True)  # just outside the window
    assert window_digest(entries, 30) == before


def test_streams_freeze_the_process_at_the_first_then_every_few_and_release_after_churn():
    policy = FreezePolicy()
    step = FreezePolicy.FIRST
    actions = {n: policy.action(n) for n in range(1, 1001)}
    frozen = [n for n, action in actions.items() if action == FreezePolicy.FREEZE]
    # The first stream, then every FIRST more: a collection never walks more
    # than the streams opened since the last freeze, however many are open.
    assert frozen == [1, 1 + step, 1 + 2 * step, 1 + 3 * step]
    assert FreezePolicy.RELEASE not in actions.values()
    # A reconnect storm: every stream goes and comes back. The garbage of the old
    # ones is released as the first comes back; then freezes go on as before.
    storm = [(n, a) for n in range(1, 1001) if (a := policy.action(n)) is not None]
    assert storm[0] == (1, FreezePolicy.RELEASE)
    assert storm[1:] == [(n, FreezePolicy.FREEZE) for n in frozen[1:]]
    # Steady churn around 1,000 open: a release after every 500 (half the most
    # held) closed since, however many freezes came between.
    churn = [k for k in range(1, 1001) if policy.action(1000) == FreezePolicy.RELEASE]
    assert churn == [500, 1000]


@pytest.mark.parametrize("held", [0, 3, WINDOW, WINDOW + 5])
@pytest.mark.parametrize("read", [(), (2,), (1, 4, 9)])
@pytest.mark.parametrize("arriving", [[40], [40, 41], [41, 40], [40, 12], [40, 40]])
def test_arrivals_leave_the_stream_where_the_store_would(held, read, arriving):
    """
    A stream that takes new entries from wake-ups (no store read) ends with the
    window and the cursor a stream that read the store would have: whether the
    window was empty, part full or full, read or unread, and whether an entry
    comes newest, out of order, or twice.
    """
    from pigeonhole import constants
    from pigeonhole.brokers.base import WakeUp
    from pigeonhole.live import EventStream, Snapshot, _window

    def held_entry(n):
        return entry(n, read=n in read)

    store = [held_entry(n) for n in range(held, 0, -1)]  # newest first
    stream = EventStream(1, subscription=None)
    stream.window = _window(store)
    stream.cursor = Snapshot(store, 0, {}).cursor()
    for n in arriving:
        wakeup = WakeUp("1", constants.EVENT_MESSAGE, (n,), 1, entry=entry(n), data="")
        stream.arrived([wakeup])
        if all(e.id != n for e in store):
            store = sorted([*store, entry(n)], key=lambda e: e.id, reverse=True)
    assert stream.window == _window(store)
    assert stream.cursor == Snapshot(store, 0, {}).cursor()


def test_an_arrival_is_the_wake_up_its_fields_make():
    from pigeonhole import constants
    from pigeonhole.brokers.base import WakeUp

    new = entry(40)
    arrival = WakeUp.arrival("7", constants.EVENT_MESSAGE, new, 3, "data: {}\n", 12)
    made = WakeUp("7", constants.EVENT_MESSAGE, (40,), 3, entry=new, data="data: {}\n", replaces=12)
    assert arrival == made
    assert (arrival.entry, arrival.data, arrival.replaces) == (new, "data: {}\n", 12)
    assert hash(arrival) == hash(made) and repr(arrival) == repr(made)


class Process:
    """A process's frozen objects as streams open and close, for ``FreezePolicy``."""

    START, PER_STREAM = 60_000, 80

    def __init__(self, left_per_closed):
        self.policy = FreezePolicy()
        self.left_per_closed = left_per_closed
        self.garbage = 0  # frozen objects of closed streams, in reference cycles
        self.frozen_streams = 0

    def frozen(self):
        return self.START + self.garbage + self.PER_STREAM * self.frozen_streams

    def open(self, streams):
        """Open streams one by one up to ``streams``; return the actions, by open streams."""
        actions = {}
        for n in range(1, streams + 1):
            action = self.policy.action(n, self.frozen)
            if action == FreezePolicy.RELEASE:
                self.garbage = 0
            if action is not None:
                self.frozen_streams = n
                released = action == FreezePolicy.RELEASE
                self.policy.frozen(self.frozen(), n, released=released)
                actions[n] = action
        return actions

    def close_all(self):
        # Objects in no cycle are freed as their stream closes, frozen or not.
        self.garbage += self.left_per_closed * self.frozen_streams
        self.frozen_streams = 0


def test_a_storm_whose_streams_left_little_frozen_puts_the_release_off():
    """Streams that leave only their connection's cycle behind: no full collection per storm."""
    process = Process(left_per_closed=6)
    first = process.open(1000)
    assert FreezePolicy.RELEASE not in first.values()
    releases = []
    for storm in range(1, 11):
        process.close_all()
        if FreezePolicy.RELEASE in process.open(1000).values():
            releases.append(storm)
    # The garbage waits until it holds as many objects as half the streams did.
    assert releases[0] > 3
    assert releases and process.garbage <= process.PER_STREAM * 1000 / 2


def test_a_storm_whose_streams_left_much_frozen_releases_it_at_once():
    """Streams that leave their request and response in cycles: released as the first comes back."""
    process = Process(left_per_closed=140)
    process.open(1000)
    process.close_all()
    assert process.open(1000)[1] == FreezePolicy.RELEASE
