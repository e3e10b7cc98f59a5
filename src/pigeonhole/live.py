"""
The live event stream of one user: what to send, and what to replay.

The store is the log. A wake-up from the broker only says that something
changed; the stream then reads the store and sends what the client does not
have yet. Every event carries a cursor as its ``id``, which the browser sends
back as ``Last-Event-ID`` when it reconnects.

The cursor is ``"<latest>-<digest>"``:

- ``latest`` is the newest entry id the client has been sent. New messages
  always get higher entry ids, so a reconnect replays, oldest first, every
  entry newer than ``latest`` (up to ``STREAM_REPLAY_LIMIT``; beyond that a
  ``reset`` asks the client to fetch its inbox again).
- ``digest`` is a short hash of the read state of the client's newest
  ``WINDOW`` entries (those up to ``latest``). Reads, archives and deletions
  do not get new ids and no log keeps them, so they cannot be replayed one by
  one; instead, if the digest the client brings back no longer matches the
  store, some of the entries it shows changed while it was away, and a
  ``reset`` tells it to refetch. An unread ``count`` follows every reconnect.

The same check runs whenever the broker says wake-ups may have been missed
(``SYNC``: its connection came back, or this stream fell behind).

A new message does not make each stream read the store. The broker hears one
``Sent`` for all its recipients, and the process reads the entries of all its
streams' users in one go (:func:`read_sent`); each stream gets its entry and
unread count, and works out the next cursor from the window it keeps (the ids
and read state of its ``WINDOW`` newest entries), just as the store would.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import re
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, NamedTuple, TypeVar

from asgiref.sync import SyncToAsync
from django.db import connections

from . import constants, service
from .backends.base import BaseBackend
from .brokers.base import SYNC, Subscription, WakeUp
from .conf import pigeonhole_settings
from .exceptions import MessageNotFound
from .message import StoredMessage, UserId
from .representation import message_to_dict, recipient_fields, senders_for
from .sse import Data, comment, encode_data, encode_event, retry, to_json

__all__ = [
    "WINDOW",
    "Cursor",
    "EventStream",
    "Snapshot",
    "StoreReads",
    "close_connections",
    "process_stream_limit",
    "read_sent",
    "read_snapshot",
    "read_snapshots",
    "read_together",
    "release_sent_reader",
    "release_sent_reader_soon",
]

#: How many of the newest entries the cursor's digest covers: the ones an
#: inbox page or a dropdown shows, whose read state the client must not get wrong.
WINDOW = 20

#: Seconds a new stream waits for the broker's listener before reading the store anyway.
CONNECT_WAIT = 2.0

#: The reconnection delay, in milliseconds, that the stream asks browsers to use.
RETRY_MS = 3000

#: File descriptors a process keeps free of streams, for its database and broker
#: connections, its log files and its other requests: this many, or a tenth of the
#: open-file limit if that is more.
FD_RESERVE = 100

_STATE_EVENTS = (
    constants.EVENT_READ,
    constants.EVENT_UNREAD,
    constants.EVENT_ARCHIVED,
    constants.EVENT_UNARCHIVED,
    constants.EVENT_DELETED,
    constants.EVENT_SEEN,
    constants.EVENT_SAVED,
    constants.EVENT_UNSAVED,
)
_THREAD_EVENTS = (constants.EVENT_MUTED, constants.EVENT_UNMUTED)
_CURSOR = re.compile(r"(\d{1,20})-([0-9a-f]{8})")


class Cursor(NamedTuple):
    """
    Where a client stands: the newest entry it has, and the digest of its window.

    A tuple, the cheapest value Python builds: a broadcast makes one for each
    of thousands of streams.
    """

    latest: int
    digest: str

    def __str__(self) -> str:
        return f"{self.latest}-{self.digest}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """Return the cursor in ``text``, or None for anything else (a fresh start)."""
        match = _CURSOR.fullmatch((text or "").strip())
        return cls(int(match[1]), match[2]) if match else None


def window_digest(entries: Sequence[StoredMessage], latest: int) -> str:
    """Hash the ids and read state of the ``WINDOW`` newest ``entries`` up to ``latest``."""
    return _digest(_window(entry for entry in entries if entry.id <= latest))


def _window(entries: Iterable[StoredMessage]) -> tuple[int, ...]:
    # The newest WINDOW entries, newest first, as ids; a read entry's id negated.
    # Small, so that thousands of open streams can each keep theirs.
    return tuple(-e.id if e.is_read else e.id for e in islice(entries, WINDOW))


def _digest(window: tuple[int, ...]) -> str:
    if window and min(window) > 0:
        # All unread, as most windows are: the same text, built in one pass in C
        # (a broadcast computes a digest for each of thousands of streams).
        text = "u,".join(map(str, window)) + "u"
    else:
        text = ",".join([f"{n}u" if n >= 0 else f"{-n}r" for n in window])
    return hashlib.blake2s(text.encode(), digest_size=4).hexdigest()


@dataclass
class Snapshot:
    """What the store says right now: the newest entries (newest first) and the count."""

    entries: list[StoredMessage]
    count: int
    senders: dict[UserId, dict[str, Any]]
    #: ``{entry id: the thread row it replaced}`` for the entries newer than ``latest``.
    replaced: dict[int, StoredMessage] = field(default_factory=dict)
    #: The unseen count, read only where badges show it (``BADGE = "unseen"``).
    unseen: int | None = None

    @property
    def latest(self) -> int:
        return self.entries[0].id if self.entries else 0

    def cursor(self, latest: int | None = None) -> Cursor:
        """
        Return the cursor of a client that has every entry up to ``latest``.

        Such a client still shows the thread rows that newer entries replaced
        since: they count in its window as they were.
        """
        latest = self.latest if latest is None else latest
        shown = [old for pk, old in self.replaced.items() if pk > latest and old.id <= latest]
        entries = self.entries
        if shown:
            entries = sorted([*entries, *shown], key=lambda entry: entry.id, reverse=True)
        return Cursor(latest, window_digest(entries, latest))

    def newer_than(self, latest: int) -> list[StoredMessage]:
        """Return the entries newer than ``latest``, oldest first, as they are sent."""
        return [entry for entry in reversed(self.entries) if entry.id > latest]


def close_connections() -> None:
    """
    Close this thread's database connections.

    A stream waits for minutes or hours between reads; holding a connection
    all that time would let a few hundred idle tabs exhaust the database.
    """
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def process_stream_limit(setting: int | None) -> int | None:
    """
    Return how many streams this process may hold: ``setting``, below the open-file limit.

    Each stream holds a socket. A process that runs out of file descriptors
    fails everything at once (new database connections, ordinary requests,
    its broker's reconnection), so streams stop short of the limit and the
    rest is kept for those. ``None`` leaves the open-file limit alone.
    """
    try:
        import resource
    except ImportError:  # Windows has no RLIMIT_NOFILE to respect
        return setting
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return setting
    room = max(soft - max(FD_RESERVE, soft // 10), 1)
    return room if setting is None else min(setting, room)


def read_snapshots(reads: Sequence[tuple[UserId, int, int]]) -> list[Snapshot]:
    """
    Return ``read_snapshot(*read)`` for each of ``reads``, the users' entries read together.

    In a reconnect storm a reader takes dozens of streams' reads at once: the
    store reads their entries and counts in one go (``BaseBackend.snapshots()``,
    two statements on the database store) rather than two reads each.
    """
    backend = service.store()
    by_limit: dict[int, list[UserId]] = {}
    for user_id, _, limit in reads:
        by_limit.setdefault(limit, []).append(user_id)
    found: dict[tuple[UserId, int], tuple[list[StoredMessage], int]] = {}
    for limit, user_ids in by_limit.items():
        unique = list(dict.fromkeys(user_ids))
        for user_id, read in zip(unique, backend.snapshots(unique, limit), strict=True):
            found[user_id, limit] = read
    snapshots = []
    for user_id, latest, limit in reads:
        entries, count = found[user_id, limit]
        new = [entry for entry in entries if entry.id > latest]
        unseen = backend.unseen_count(user_id) if pigeonhole_settings.BADGE == "unseen" else None
        snapshots.append(
            Snapshot(entries, count, senders_for(new), replaced_rows(backend, new), unseen)
        )
    return snapshots


def replaced_rows(
    backend: BaseBackend, entries: Sequence[StoredMessage]
) -> dict[int, StoredMessage]:
    """
    Return ``{entry id: the thread row it replaced}`` for new ``entries``.

    One read with a store that has ``replaced()``; otherwise one read of
    each threaded entry's history, the newest older message being the row
    the client shows.
    """
    threaded = [entry for entry in entries if entry.thread is not None]
    if not threaded:
        return {}
    try:
        return backend.replaced(threaded)
    except NotImplementedError:
        pass
    found: dict[int, StoredMessage] = {}
    for entry in threaded:
        try:
            history = backend.thread_messages(entry.user_id, entry.id)
        except (NotImplementedError, MessageNotFound):
            continue
        older = [message for message in history if message.id < entry.id]
        if older:
            found[entry.id] = max(older, key=lambda message: message.id)
    return found


def event_data(
    entry: StoredMessage, senders: Any, replaced: dict[int, StoredMessage]
) -> dict[str, Any]:
    """Return a ``message`` event's data: the message, and the row it replaces if any."""
    data = message_to_dict(entry, senders)
    if entry.id in replaced:
        data["replaces"] = replaced[entry.id].id
    return data


def message_data(
    entries: Sequence[StoredMessage], senders: Any, replaced: dict[Any, Any]
) -> list[Data]:
    """
    Return the ``data:`` lines of a ``message`` event for each of ``entries`` of one content.

    The same as ``encode_data(event_data(entry, ...))`` for each, but entries
    whose own fields render alike (every recipient of a fresh message) share
    the encoding of all but their id, their JSON's first key: a broadcast is
    encoded once per process, not once per recipient.
    """
    encoded: list[Data] = []
    tails: dict[tuple[Any, ...], str] = {}
    for entry in entries:
        replaces = replaced[entry.id].id if entry.id in replaced else None
        key = (*recipient_fields(entry), replaces)
        tail = tails.get(key)
        if tail is None:
            data = event_data(entry, senders, replaced)
            del data["id"]
            tail = tails[key] = to_json(data)[1:]
        pk = entry.id
        # An int's JSON is its str(), at a fifth of the encoder's cost.
        encoded.append(Data(f'data: {{"id":{pk if type(pk) is int else to_json(pk)},{tail}\n'))
    return encoded


def _read_sent(batch: Sequence[tuple[Any, Sequence[str]]]) -> list[dict[str, WakeUp]]:
    try:
        backend = service.store()
        results = []
        for message_id, user_ids in batch:
            found = backend.deliveries(message_id, user_ids)
            # Every entry shares the one content, so there is one sender to look up.
            senders = senders_for([entry for entry, _ in found[:1]])
            threaded = [entry for entry, _ in found if entry.thread is not None]
            try:
                replaced = backend.replaced(threaded) if threaded else {}
            except NotImplementedError:
                # Each stream of a threaded message works it out as it reads the store.
                replaced = None
            wakeups = {}
            if replaced is None:
                for entry, _ in found:
                    user_id = str(entry.user_id)
                    wakeups[user_id] = WakeUp(user_id, constants.EVENT_MESSAGE)
                results.append(wakeups)
                continue
            encoded = message_data([entry for entry, _ in found], senders, replaced)
            for (entry, unread), data in zip(found, encoded, strict=True):
                user_id = str(entry.user_id)
                wakeups[user_id] = WakeUp.arrival(
                    user_id,
                    constants.EVENT_MESSAGE,
                    entry,
                    unread,
                    data,
                    replaced[entry.id].id if entry.id in replaced else None,
                )
            results.append(wakeups)
        return results
    except BaseException:
        close_connections()  # a broken connection is not kept for the next message
        raise


#: The thread that reads new messages for the streams of this process. One
#: thread, so that its database connection serves message after message while
#: they keep coming, and :func:`release_sent_reader` closes it when they stop.
_sent_reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pigeonhole-live")

#: Seconds without a new message after which the reading thread lets its
#: database connection go: an idle process holds none.
SENT_READER_IDLE = 1.0


async def read_sent(batch: Sequence[tuple[Any, Sequence[str]]]) -> list[dict[str, WakeUp]]:
    """
    Read new messages' entries for this process's streams: ``(message id, user ids)`` each.

    Return, for each message, a ``message`` wake-up per user who has a visible
    entry, carrying the entry, its public JSON (encoded once for all the
    user's streams) and the user's unread count: one store read per message
    (and, for a message with a sender, one read of the sender) however many
    streams there are. The messages are read one after the other, on the
    reading thread's database connection; call :func:`release_sent_reader`
    once no more are coming.
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_sent_reader, _read_sent, batch)


async def release_sent_reader() -> None:
    """Close the database connection of the thread that reads new messages."""
    await asyncio.get_running_loop().run_in_executor(_sent_reader, close_connections)


def release_sent_reader_soon() -> None:
    """Close that connection without waiting: for a task cancelled with its loop."""
    _sent_reader.submit(close_connections)


#: Streams' store reads run at most this many at a time per process (each on a
#: thread of the shared pool, with one database connection) ...
READERS = 4
#: ... and each reader takes up to this many waiting reads, one after the other
#: on the same connection, ...
READ_BATCH = 50
#: ... and keeps its connection this many seconds after the last, for the next:
#: in a reconnect storm streams arrive a few milliseconds apart, and a new
#: connection costs more than the reads of several streams.
READER_IDLE = 1.0
#: A reader woken for a read waits this many seconds for others to join it
#: (unless ``READ_BATCH`` already wait): a storm's streams come a few
#: milliseconds apart, and each batch costs its statements and a thread hand-off
#: however few reads it holds.
READ_GATHER = 0.005


#: The threads the readers run on, one each: a reader's database connection
#: serves batch after batch while streams keep coming, and goes when none wait.
_readers = [
    ThreadPoolExecutor(max_workers=1, thread_name_prefix="pigeonhole-read") for _ in range(READERS)
]


#: Reads that a reader runs together when a batch holds several: each read
#: function, and the function that runs a list of its calls' arguments at once.
_TOGETHER: dict[Callable[..., Any], Callable[[list[tuple[Any, ...]]], list[Any]]] = {}

_F = TypeVar("_F", bound=Callable[..., Any])


def read_together(many: Callable[[list[tuple[Any, ...]]], list[Any]]) -> Callable[[_F], _F]:
    """
    Mark a read function whose calls in one reader's batch ``many`` runs at once.

    ``many`` takes the calls' arguments, a tuple each, and returns a result
    for each, in order; a result that is an exception is raised to its caller
    alone. A batch with one call of the function calls it as it is.
    """

    def mark(function: _F) -> _F:
        _TOGETHER[function] = many
        return function

    return mark


# Looked up when called, as the other reads are: a test may stand in for it.
@read_together(lambda reads: read_snapshots(reads))
def read_snapshot(user_id: UserId, latest: int, limit: int) -> Snapshot:
    """Read the newest ``limit`` entries, the unread count, and the senders of new entries."""
    return read_snapshots([(user_id, latest, limit)])[0]


def _read_batch(calls: Sequence[tuple[Any, tuple[Any, ...]]]) -> list[Any]:
    results: list[Any] = [None] * len(calls)
    groups: dict[Any, list[int]] = {}
    for n, (function, _) in enumerate(calls):
        groups.setdefault(function if function in _TOGETHER else n, []).append(n)
    for key, numbers in groups.items():
        if len(numbers) > 1:
            read: list[Any]
            try:
                read = _TOGETHER[key]([calls[n][1] for n in numbers])
            except Exception as exc:
                close_connections()  # a broken connection is not kept for the next read
                read = [exc] * len(numbers)
            for n, result in zip(numbers, read, strict=True):
                results[n] = result
            continue
        function, args = calls[numbers[0]]
        try:
            results[numbers[0]] = function(*args)
        except Exception as exc:
            close_connections()
            results[numbers[0]] = exc
    return results


class StoreReads:
    """
    The store reads of one event loop's streams, batched: opening a stream and its snapshots.

    When a deploy drops every stream at once, thousands come back within
    seconds, and each must load its user and read the store before it can
    resume. Run one by one, each would open a database connection of its own
    (and Django's ASGI handler would load the user on a new connection for
    each request). Here at most ``READERS`` reads run at once, and a reader
    that finds others waiting takes up to ``READ_BATCH`` of them on the same
    connection: the store sees a few connections from the process, not a
    stampede. A stream that leaves while it waits is not read at all.
    """

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StoreReads] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self) -> None:
        self.waiting: deque[tuple[tuple[Any, tuple[Any, ...]], asyncio.Future[Any]]] = deque()
        #: The running readers, by the index of their thread in ``_readers``.
        self.readers: dict[int, asyncio.Task[None]] = {}
        #: The readers idling with their connection, each woken by its future.
        self.idle: list[asyncio.Future[None]] = []
        #: The readers waiting for more reads to join their batch (``READ_GATHER``),
        #: each woken by its future once a full batch waits.
        self.gathering: list[asyncio.Future[None]] = []

    @classmethod
    def for_loop(cls) -> StoreReads:
        loop = asyncio.get_running_loop()
        reads = cls._by_loop.get(loop)
        if reads is None:
            reads = cls._by_loop[loop] = cls()
        return reads

    async def run(self, function: Any, *args: Any) -> Any:
        """Return ``function(*args)``, called on a reader's thread with the others waiting."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting.append(((function, args), future))
        self._wake_reader()
        return await future

    def _wake_reader(self) -> None:
        """Hand the new read to an idle reader, or start one if fewer than ``READERS`` run."""
        if self.gathering:
            # The read joins that reader's batch, which goes now if it is full.
            if len(self.waiting) >= READ_BATCH:
                for full in self.gathering:
                    if not full.done():
                        full.set_result(None)
            return
        while self.idle:
            woken = self.idle.pop()
            if not woken.done():  # else it timed out, and its reader checks the queue anyway
                woken.set_result(None)
                return
        # A reader that just ended is done before its callback leaves ``readers``.
        running = {slot for slot, task in self.readers.items() if not task.done()}
        if len(running) < READERS:
            slot = min(set(range(READERS)) - running)
            reader = asyncio.get_running_loop().create_task(self._drain(slot))
            self.readers[slot] = reader
            reader.add_done_callback(functools.partial(self._ended, slot))

    def _ended(self, slot: int, reader: asyncio.Task[None]) -> None:
        if self.readers.get(slot) is reader:
            del self.readers[slot]

    async def read(self, user_id: Any, latest: int, limit: int) -> Snapshot:
        """Return ``read_snapshot(user_id, latest, limit)``."""
        snapshot: Snapshot = await self.run(read_snapshot, user_id, latest, limit)
        return snapshot

    async def _drain(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        thread = _readers[slot]
        try:
            while await self._next():
                if READ_GATHER and len(self.waiting) < READ_BATCH:
                    await self._gather()
                batch: list[tuple[tuple[Any, tuple[Any, ...]], asyncio.Future[Any]]] = []
                while self.waiting and len(batch) < READ_BATCH:
                    call, future = self.waiting.popleft()
                    if not future.done():  # a stream that left while waiting is not read
                        batch.append((call, future))
                if not batch:
                    continue
                try:
                    results = await loop.run_in_executor(
                        thread, _read_batch, [call for call, _ in batch]
                    )
                except BaseException:  # cancelled with the loop: the waiters go too
                    for _, future in batch:
                        future.cancel()
                    raise
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            # Nobody waited for a while: streams hold no connection between their reads.
            thread.submit(close_connections)

    async def _gather(self) -> None:
        """Wait up to ``READ_GATHER`` seconds for more reads to join this reader's batch."""
        await _wait_listed(self.gathering, READ_GATHER)

    async def _next(self) -> bool:
        """Return whether a read waits, after up to ``READER_IDLE`` seconds for one."""
        if not self.waiting:
            await _wait_listed(self.idle, READER_IDLE)
        return bool(self.waiting)


async def _wait_listed(waiters: list[asyncio.Future[None]], seconds: float) -> None:
    """
    Wait up to ``seconds`` on a future listed in ``waiters``, for whoever wakes it.

    The waker resolves a listed future (and may take it off the list); one
    that timed out takes itself off, so no later waker spends its wake on it.
    """
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiters.append(future)
    try:
        async with asyncio.timeout(seconds):
            await future
    except TimeoutError:
        pass
    finally:
        if future in waiters:
            waiters.remove(future)


class FreezePolicy:
    """
    When to leave the process's long-lived objects out of garbage collections.

    A full collection walks every object the process tracks, and each open
    stream keeps dozens alive (its request, its response, the server's
    connection): with thousands of streams one collection pauses the process
    for long enough to delay every event due meanwhile. Frozen objects
    (``gc.freeze()``) are left out. So the process collects and freezes what
    it holds:

    - ``FREEZE`` when its first stream opens, then each time ``FIRST`` more
      have opened: what start-up loaded and the streams opened so far are left
      out, and a collection walks at most the objects of the ``FIRST`` streams
      opened since (and whatever else is new), however many are open. Each
      freeze's own collection walks only those, so opening ``n`` streams walks
      each stream's objects about once;
    - ``RELEASE`` once as many streams closed as half the most it held at once
      (at least ``FIRST``): frozen objects are never collected, so the garbage
      of the closed streams is collected by unfreezing everything first. A
      reconnect storm that replaces every stream costs one such collection, as
      its first streams come back.

    A closed stream's objects that were in no reference cycle were freed as it
    closed, frozen or not, and left the frozen count (``gc.get_freeze_count()``).
    Given that count, a ``RELEASE`` is put off while what is left frozen, beyond
    start-up and the open streams, holds fewer objects than half the most streams
    did (the streams that ``pigeonhole.asgi.live_streams`` serves leave little
    more than their server connection behind): a storm then costs no full
    collection, and the garbage waits for a later one.

    A broadcast freezes too, once its streams have written (``collect_soon()``).
    """

    FIRST = 256
    FREEZE, RELEASE = "freeze", "release"

    def __init__(self) -> None:
        self.most: int | None = None
        #: Open streams at the last release, and streams opened since.
        self.base = 0
        self.opened = 0
        #: Streams opened since the last freeze or release.
        self.unfrozen = 0
        #: What ``frozen()`` measured: the frozen objects that are no stream's
        #: (start-up's), those of one stream, and the last freeze's count and streams.
        self.floor: int | None = None
        self.per_stream = 0.0
        self.last = (0, 0)

    def action(self, open_streams: int, frozen: Callable[[], int] | None = None) -> str | None:
        """
        Note one more open stream (``open_streams`` with it); return what to do now.

        ``frozen()``, the process's frozen objects now, lets a release wait
        while the closed streams left little frozen behind; without it a release
        is never put off. It is called only when a release is due: counting
        walks every frozen object, a millisecond for a hundred thousand.
        """
        self.opened += 1
        self.unfrozen += 1
        closed = self.base + self.opened - open_streams
        action = None
        if self.most is not None and closed >= max(self.most // 2, self.FIRST):
            self.base, self.opened = open_streams, 0
            left = None if frozen is None else self.left_behind(frozen(), open_streams)
            if left is None or left >= self.worth_a_release():
                action = self.RELEASE
        if action is None and (self.most is None or self.unfrozen >= self.FIRST):
            action = self.FREEZE
        self.most = max(open_streams, self.most or 0)
        if action is not None:
            self.unfrozen = 0
        return action

    def frozen(self, count: int, open_streams: int, *, released: bool = False) -> None:
        """
        Note ``count`` objects frozen just now, with ``open_streams`` open.

        A stream's share is what the count grew by per stream opened since the
        last freeze: garbage frozen earlier is in both counts, and so not in
        the share. Start-up's share is measured on a clean heap, at the first
        freeze and after a release.
        """
        last_count, last_streams = self.last
        if open_streams - last_streams >= self.FIRST // 2:
            self.per_stream = max(count - last_count, 0) / (open_streams - last_streams)
        if self.floor is None or released:
            self.floor = max(count - round(self.per_stream * open_streams), 0)
        self.last = (count, open_streams)

    def left_behind(self, frozen: int, open_streams: int) -> float:
        """How many of ``frozen`` neither start-up nor the open streams account for."""
        return frozen - (self.floor or 0) - self.per_stream * open_streams

    def worth_a_release(self) -> float:
        """Frozen garbage worth a full collection: the objects of half the most streams."""
        return self.per_stream * (self.most or 0) / 2


_freeze_policy = FreezePolicy()


def freeze_long_lived_objects(open_streams: int) -> None:
    """Collect, then freeze what the process holds, when ``FreezePolicy`` says it is time."""
    action = _freeze_policy.action(open_streams, gc.get_freeze_count)
    if action == FreezePolicy.RELEASE:
        gc.unfreeze()
    if action is not None:
        gc.collect()
        gc.freeze()
        released = action == FreezePolicy.RELEASE
        _freeze_policy.frozen(gc.get_freeze_count(), open_streams, released=released)


def hold_collections(streams: int) -> bool:
    """
    Stop garbage collections for a broadcast to ``streams`` streams; return whether they were.

    A broadcast reads thousands of entries and wakes thousands of streams,
    each of which leaves a few new objects behind (what it waits with next).
    Left alone, the collector would walk every unfrozen object two or three
    times in the middle of it, while streams not yet written wait. So for a
    broadcast (``FreezePolicy.FIRST`` streams or more) nothing is collected
    until :func:`collect_soon`, called once the streams were woken, runs after
    them. A site that disabled the collector keeps it disabled.
    """
    if streams < FreezePolicy.FIRST or not gc.isenabled():
        return False
    gc.disable()
    return True


def collect_soon() -> None:
    """
    Collect once the streams woken so far have run, freeze what they keep, and resume collections.

    The woken streams run in the loop's next iteration, before a callback
    scheduled now. What they keep is left out of later collections, as the
    streams themselves are (``FreezePolicy``).
    """
    try:
        asyncio.get_running_loop().call_soon(_collect_and_freeze)
    except RuntimeError:  # no loop left to run it: collect now
        _collect_and_freeze()


def _collect_and_freeze() -> None:
    try:
        gc.collect()
        gc.freeze()
    finally:
        gc.enable()


def request_thread_executors() -> tuple[Any, Any] | None:
    """
    Return where asgiref keeps this request's thread: its executor map, and the key in it.

    Django's ASGI handler runs a request's thread-sensitive sync code on an
    executor that asgiref keeps in ``SyncToAsync.context_to_thread_executor``,
    keyed by the request's context, found in
    ``SyncToAsync.thread_sensitive_context``. asgiref offers no public way to
    reach either, so this is the one place that touches them; a test asserts
    both still exist and are found inside an ASGI request, so an asgiref
    release that changes them fails the suite instead of quietly leaving an
    idle thread per open stream.

    Return None outside a request's context, in a context whose executor its
    owner manages (``ThreadSensitiveContext(executor=...)``), or on an asgiref
    without these attributes.
    """
    context = getattr(SyncToAsync, "thread_sensitive_context", None)
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    if context is None or executors is None:  # an asgiref that works otherwise
        return None
    current = context.get(None)
    if current is None or getattr(current, "_executor", None) is not None:
        return None
    return executors, current


async def release_request_thread() -> None:
    """
    Let go of the thread Django's ASGI handler keeps for this request.

    The handler runs a request's thread-sensitive sync code (middleware, the
    session, the user) on a thread of the request's own, and keeps that thread
    until the response ends: for a stream, an idle OS thread for hours, one per
    open stream. Once the stream produces its first frame that code has run,
    and the stream's own reads use the shared pool; so the thread closes its
    database connections and ends. A thread-sensitive call later in the request
    (Django's ``response.close()``) gets a new one, released as usual.
    """
    found = request_thread_executors()
    if found is None:
        return
    executors, current = found
    executor = executors.pop(current, None)
    if executor is None:
        return
    try:
        await asyncio.get_running_loop().run_in_executor(executor, close_connections)
    finally:
        executor.shutdown(wait=False)


class EventStream:
    """
    Produce one user's Server-Sent Events, from a broker subscription and the store.

    Iterate it (``async for``) to get frames. The subscription is closed when
    the iteration ends, however it ends: a client that disconnects cancels the
    task, and ``finally`` runs.
    """

    def __init__(
        self,
        user_id: UserId,
        subscription: Subscription,
        *,
        cursor: Cursor | None = None,
        keepalive: float = 15,
        replay_limit: int = 100,
    ) -> None:
        self.user_id = user_id
        self.subscription = subscription
        self.cursor = cursor
        self.keepalive = keepalive
        self.replay_limit = replay_limit
        self.count: int | None = None
        #: The unseen count last sent, where badges show it; None otherwise.
        self.unseen: int | None = None
        #: The ids and read state of the newest entries the client has, as the
        #: cursor's digest covers them; None until the store was first read.
        self.window: tuple[int, ...] | None = None
        #: When the stream last wrote (the loop's clock), and its keep-alive timer.
        self.written = 0.0
        self.timer: asyncio.TimerHandle | None = None

    async def snapshot(self, latest: int) -> Snapshot:
        # Batched with the other streams' reads: see StoreReads.
        return await StoreReads.for_loop().read(self.user_id, latest, self.replay_limit + WINDOW)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """
        Yield the stream's frames, encoded: each yield is one write to the client.

        The frames of one update go out in one write: a broadcast to thousands
        of streams costs a write each, not one per frame.
        """
        loop = asyncio.get_running_loop()
        self.written = loop.time()
        self.timer = loop.call_later(self.keepalive, self._tick)
        try:
            # Sent at once, so proxies and clients see a live stream, with the
            # reconnection delay browsers should use.
            yield (comment("pigeonhole") + retry(RETRY_MS)).encode()
            freeze_long_lived_objects(self.subscription.broker.subscriber_count())
            await release_request_thread()
            await self.connected()
            if frames := await self.start():
                self.written = loop.time()
                yield "".join(frames).encode()
            while True:
                batch = await self.subscription.get()
                # An empty batch: nudged by _tick(), as nothing was sent for a while.
                frames = await self.update(batch) if batch else [comment("keep-alive")]
                if frames:
                    self.written = loop.time()
                    yield "".join(frames).encode()
                # Nothing of this update is kept while the stream waits for the next.
                del batch, frames
        finally:
            if self.timer is not None:
                self.timer.cancel()
            self.subscription.close()

    def _tick(self) -> None:
        """
        Ask for a keep-alive if nothing was sent for ``keepalive`` seconds; check again then.

        One timer per stream, moved on only once per ``keepalive`` seconds: a
        wake-up costs the stream no timer to arm and cancel, which for a
        broadcast to thousands of streams is a heap operation each.
        """
        loop = asyncio.get_running_loop()
        idle = loop.time() - self.written
        if idle >= self.keepalive:
            self.subscription.nudge()
            idle = 0.0
        self.timer = loop.call_later(self.keepalive - idle, self._tick)

    async def start(self) -> list[str]:
        """
        Return the opening frames: the count, or what a reconnecting client missed.

        A method of its own so that the snapshot it reads (up to
        ``STREAM_REPLAY_LIMIT`` entries) is not kept alive, in the generator's
        frame, for as long as the stream stays open.
        """
        if self.cursor is not None:
            return await self.update([WakeUp(self.user_id, SYNC)], reconnect=True)
        snapshot = await self.snapshot(0)
        self.cursor = snapshot.cursor()
        self.window = _window(snapshot.entries)
        return self._count(snapshot, force=True)

    async def connected(self) -> None:
        """
        Wait (briefly) for the broker's first ``SYNC``, before reading the store.

        From that wake-up on, every change is announced; so the store read
        that follows misses nothing, and the stream need not check again. If
        the broker is down the stream goes on from the store, and its ``SYNC``,
        when the broker is back, triggers the check then.
        """
        try:
            async with asyncio.timeout(CONNECT_WAIT):
                await self.subscription.get()
        except TimeoutError:
            pass

    async def update(self, batch: Sequence[WakeUp], *, reconnect: bool = False) -> list[str]:
        """Return the frames that bring the client up to date after ``batch``."""
        assert self.cursor is not None
        if self.window is not None and all(self.can_apply(wakeup) for wakeup in batch):
            return self.arrived(batch)
        before = self.cursor
        snapshot = await self.snapshot(before.latest)
        self.window = _window(snapshot.entries)
        new = snapshot.newer_than(before.latest)
        missed = any(wakeup.event == SYNC for wakeup in batch)
        if len(new) > self.replay_limit or (missed and snapshot.cursor(before.latest) != before):
            # Too much to replay, or entries the client shows changed unseen.
            self.cursor = snapshot.cursor()
            reason = "gap" if len(new) > self.replay_limit else "changed"
            frame = encode_event(constants.EVENT_RESET, {"reason": reason}, id=str(self.cursor))
            return [frame, *self._count(snapshot, force=True)]
        frames: list[str] = []
        state_cursor = str(snapshot.cursor(before.latest))
        for wakeup in batch:
            if wakeup.event in _STATE_EVENTS and wakeup.ids:
                data = {"ids": list(wakeup.ids)}
                frames.append(encode_event(wakeup.event, data, id=state_cursor))
            elif wakeup.event in _THREAD_EVENTS and wakeup.ids:
                data = {"thread": wakeup.ids[0]}
                frames.append(encode_event(wakeup.event, data, id=state_cursor))
        for entry in new:
            self.cursor = snapshot.cursor(entry.id)
            data = event_data(entry, snapshot.senders, snapshot.replaced)
            frames.append(encode_event(constants.EVENT_MESSAGE, data, id=str(self.cursor)))
        self.cursor = snapshot.cursor(max(before.latest, snapshot.latest))
        return frames + self._count(snapshot, force=reconnect)

    def can_apply(self, wakeup: WakeUp) -> bool:
        """
        Whether ``wakeup`` is a new entry the window can take without a store read.

        A thread's row that moves to the top leaves the window; if the window
        is full, the entry that then enters it at the bottom is unknown here.
        """
        if wakeup.entry is None:
            return False
        if wakeup.replaces is None:
            return True  # a new row, none moved: what every fresh message is
        if self.unseen is not None:
            return False  # whether the replaced row counted as unseen, the store knows
        assert self.window is not None
        ids = [abs(n) for n in self.window]
        return wakeup.replaces not in ids or len(ids) < WINDOW

    def arrived(self, batch: Sequence[WakeUp]) -> list[str]:
        """
        Return the frames for new entries the process has read for this stream.

        No store read: the next cursor follows from the window the stream
        keeps, as the store would compute it. An entry the stream already
        has (it read the store since) is not sent twice.
        """
        assert self.cursor is not None and self.window is not None
        frames: list[str] = []
        for wakeup in batch:
            entry = wakeup.entry
            window = self.window
            mark = -entry.id if entry.is_read else entry.id
            if wakeup.replaces is None and (not window or entry.id > abs(window[0])):
                # Newer than all the window holds, as every fresh message is: it
                # goes on top (the window is newest first), the oldest drops out.
                self.window = (mark, *window[: WINDOW - 1])
            else:
                ids = [abs(n) for n in window]
                if entry.id in ids or (len(ids) >= WINDOW and entry.id < ids[-1]):
                    continue
                kept = (n for n in window if abs(n) != wakeup.replaces)
                self.window = tuple(sorted((*kept, mark), key=abs, reverse=True)[:WINDOW])
            self.cursor = Cursor(max(self.cursor.latest, entry.id), _digest(self.window))
            frames.append(encode_event(constants.EVENT_MESSAGE, wakeup.data, id=str(self.cursor)))
            unseen = self.unseen
            if unseen is not None and not (entry.seen or entry.is_archived):
                unseen += 1  # a new row, none replaced: one more unseen
            if wakeup.count is not None:
                frames += self._count_frame(wakeup.count, unseen)
        return frames

    def _count(self, snapshot: Snapshot, *, force: bool = False) -> list[str]:
        """Return a ``count`` frame if the count changed since the last one (or ``force``)."""
        return self._count_frame(snapshot.count, snapshot.unseen, force=force)

    def _count_frame(self, unread: int, unseen: int | None, *, force: bool = False) -> list[str]:
        if not force and (unread, unseen) == (self.count, self.unseen):
            return []
        self.count, self.unseen = unread, unseen
        return [
            encode_event(constants.EVENT_COUNT, _count_data(unread, unseen), id=str(self.cursor))
        ]


@functools.lru_cache(maxsize=1024)
def _count_data(unread: int, unseen: int | None) -> Data:
    # Encoded once per count, not once per stream: a broadcast sends a count to each.
    data = {"unread": unread}
    if unseen is not None:
        data["unseen"] = unseen
    return encode_data(data)
