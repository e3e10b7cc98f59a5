"""
The contract every broker implements: carry small wake-ups between processes.

A wake-up says only "user 7: entries 12, 13 were read". A new message is one
``Sent`` for all its recipients: "message 40 went to users 7, 8 and 9" (or to
too many to list). Each process that hears it reads the recipients' entries
for all of its own streams in one store read (``pigeonhole.live.read_sent``)
and hands every stream its entry, so a broadcast costs one read per process,
not one per stream. The store stays the one durable log: a lost wake-up
delays an update but never loses a message, and a broker never carries
message text.

Each process runs at most one listener (one connection to Redis or
PostgreSQL), which fans wake-ups out to the streams open in that process
through bounded queues. A subclass provides two methods: ``send()`` to
publish one encoded payload, and ``listen()`` to receive them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SYNC",
    "BaseBroker",
    "ChannelBroker",
    "ProcessAtCapacity",
    "Sent",
    "Subscription",
    "TooManySubscriptions",
    "WakeUp",
]

logger = logging.getLogger("pigeonhole.brokers")

#: The event of a wake-up that asks a stream to re-read the store: sent after
#: the listener (re)connects, when a queue overflowed, or for a change too big
#: to describe in one payload. Wake-ups may have been missed; the store has not.
SYNC = "sync"


@dataclass(frozen=True)
class WakeUp:
    """
    One user's "something changed", as small as it can be.

    ``event`` is a ``pigeonhole.constants.EVENT_*`` name or ``SYNC``; ``ids``
    are the inbox entry ids that changed, when the publisher knows them;
    ``count`` is the unread count, when the publisher knows it without a query.
    """

    user_id: str
    event: str
    ids: tuple[Any, ...] = ()
    count: int | None = None
    #: The new entry itself (a ``StoredMessage``) and its event's ``data:`` lines
    #: (its public JSON, a ``pigeonhole.sse.Data``), once this process has read
    #: them for all its streams; never sent over the wire.
    entry: Any = field(default=None, compare=False, repr=False)
    data: Any = field(default=None, compare=False, repr=False)
    #: The id of the thread row the new entry replaces, if any (never sent either).
    replaces: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Keys are strings on every path (JSON turns a UUID into one), so a
        # wake-up published for user 7 finds the stream subscribed for user 7.
        object.__setattr__(self, "user_id", str(self.user_id))
        object.__setattr__(self, "ids", tuple(self.ids))

    @classmethod
    def arrival(
        cls, user_id: str, event: str, entry: Any, count: int | None, data: Any, replaces: Any
    ) -> WakeUp:
        """
        Return the wake-up of a new ``entry`` this process has read for ``user_id``'s streams.

        The same as ``WakeUp(user_id, event, (entry.id,), count, entry=entry,
        data=data, replaces=replaces)`` for a ``user_id`` that is a string
        already, at a third of the cost: a broadcast builds one for each user
        with a stream here, thousands, before the first stream is written.
        """
        wakeup = object.__new__(cls)
        wakeup.__dict__.update(
            user_id=user_id,
            event=event,
            ids=(entry.id,),
            count=count,
            entry=entry,
            data=data,
            replaces=replaces,
        )
        return wakeup


@dataclass(frozen=True)
class Sent:
    """
    "Message ``message_id`` has new entries": one wake-up for all its recipients.

    ``user_ids`` names them when they fit in a payload; None means "too many to
    list", and each process asks the store which of its streams' users got one.
    """

    message_id: Any
    user_ids: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.user_ids is not None:
            object.__setattr__(self, "user_ids", tuple(str(u) for u in self.user_ids))


class TooManySubscriptions(Exception):
    """Raised by ``subscribe()`` when the user already has ``limit`` open streams here."""


class ProcessAtCapacity(Exception):
    """Raised by ``subscribe()`` when this process already holds ``process_limit`` streams."""


class Subscription:
    """
    One open stream's mailbox: a bounded list of wake-ups on the stream's event loop.

    A slow stream must not make the process hoard wake-ups for it: when the
    mailbox is full, further wake-ups are dropped and the next ``get()`` returns
    a single ``SYNC`` instead, so the stream re-reads the store and loses nothing.

    A process holds thousands of these, so each is a list and at most one
    future, not an ``asyncio.Queue`` (whose four deques cost kilobytes).
    """

    __slots__ = (
        "broker",
        "closed",
        "items",
        "loop",
        "maxsize",
        "nudged",
        "overflowed",
        "user_id",
        "waiter",
    )

    def __init__(self, broker: BaseBroker, user_id: Any, maxsize: int) -> None:
        self.broker = broker
        self.user_id = str(user_id)
        self.loop = asyncio.get_running_loop()
        self.maxsize = maxsize
        # None while empty: an idle stream holds no list (thousands of them).
        self.items: list[WakeUp] | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.overflowed = False
        self.nudged = False
        self.closed = False

    def put(self, wakeup: WakeUp) -> None:
        """Queue ``wakeup``; safe to call from any thread."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._put(wakeup)
            return
        try:
            self.loop.call_soon_threadsafe(self._put, wakeup)
        except RuntimeError:  # the stream's loop has closed: nobody to tell
            self.close()

    def _put(self, wakeup: WakeUp) -> None:
        if self.items is None:
            self.items = [wakeup]
        elif len(self.items) >= self.maxsize:
            self.overflowed = True
        else:
            self.items.append(wakeup)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def nudge(self) -> None:
        """Make the waiting ``get()`` return, with nothing if nothing came; on the loop only."""
        self.nudged = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def empty(self) -> bool:
        """Return whether no wake-up is waiting."""
        return self.items is None and not self.overflowed

    async def get(self) -> list[WakeUp]:
        """
        Wait for the next wake-up, and return it with any others already queued.

        Return an empty list if ``nudge()`` came first: the stream's keep-alive
        timer does that, so that waiting for a wake-up costs no timer of its own.
        """
        while self.items is None and not self.overflowed and not self.nudged:
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        self.nudged = False
        batch, self.items = self.items or [], None
        if self.overflowed:
            self.overflowed = False
            return [WakeUp(self.user_id, SYNC)]
        return batch

    def close(self) -> None:
        """Stop receiving; idempotent, so every exit path may call it."""
        if not self.closed:
            self.closed = True
            self.broker.unsubscribe(self)


class BaseBroker:
    """
    Publish wake-ups after commit and deliver them to the streams of this process.

    Options (``PIGEONHOLE["BROKER_OPTIONS"]``) become instance attributes, so a
    subclass declares each one as a class attribute with its default.
    """

    #: Wake-ups queued per stream before it is asked to re-read the store instead.
    queue_size: int = 100
    #: Seconds before the first reconnection attempt; doubled after each failure.
    backoff_initial: float = 0.1
    #: The longest wait between reconnection attempts, in seconds.
    backoff_max: float = 10.0
    #: The largest payload ``send()`` is given, in bytes. A batch of wake-ups is
    #: split to fit, and a single wake-up too big for it (``mark_all_read`` on
    #: thousands of entries) is sent as ``SYNC`` without its ids.
    max_payload: int = 7000

    #: Option names accepted by this broker's constructor.
    options: Sequence[str] = ("queue_size", "backoff_initial", "backoff_max")

    def __init__(self, **options: Any) -> None:
        from django.core.exceptions import ImproperlyConfigured

        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ImproperlyConfigured(
                f"{type(self).__name__} got unknown option(s) {', '.join(unknown)} in "
                f"PIGEONHOLE['BROKER_OPTIONS']; it takes {', '.join(self.options)}."
            )
        for name, value in options.items():
            setattr(self, name, value)
        for name in ("queue_size", "backoff_initial", "backoff_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ImproperlyConfigured(
                    f"PIGEONHOLE['BROKER_OPTIONS']['{name}'] must be a positive number, "
                    f"got {value!r}."
                )
        self._lock = threading.Lock()
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._total = 0
        self._listener: asyncio.Task[None] | None = None
        # New messages waiting to be read for this process's streams, and the
        # task that reads them.
        self._pending_sent: deque[tuple[Sent, list[str]]] = deque()
        self._sent_arrived = asyncio.Event()
        self._resolver: asyncio.Task[None] | None = None
        self.connected = False

    # Publishing (any thread, sync) ---------------------------------------------
    def publish(self, wakeups: Iterable[WakeUp | Sent]) -> None:
        """
        Send ``wakeups`` to every process; call it only after the change committed.

        A broker that cannot be reached is logged, not raised: the change is
        already stored, and streams catch up on their next wake-up or reconnect.
        """
        for payload in self.encode(wakeups):
            try:
                self.send(payload)
            except Exception:
                logger.exception("%r could not publish a wake-up", self)

    def encode(self, wakeups: Iterable[WakeUp | Sent]) -> Iterable[str]:
        """Yield JSON payloads of at most ``max_payload`` bytes holding ``wakeups``."""
        batch: list[Any] = []
        size = 2
        for wakeup in wakeups:
            item = _item(wakeup)
            length = len(json.dumps(item, separators=(",", ":")).encode()) + 1
            if length > self.max_payload:
                item = _item(_smaller(wakeup))
                length = len(json.dumps(item, separators=(",", ":")).encode()) + 1
            if batch and size + length > self.max_payload:
                yield json.dumps(batch, separators=(",", ":"))
                batch, size = [], 2
            batch.append(item)
            size += length
        if batch:
            yield json.dumps(batch, separators=(",", ":"))

    @staticmethod
    def decode(payload: str | bytes) -> list[WakeUp | Sent]:
        """Return the wake-ups in ``payload``; anything malformed is skipped and logged."""
        try:
            return [_from_item(item) for item in json.loads(payload)]
        except (TypeError, ValueError, KeyError):
            logger.warning("Ignoring a malformed wake-up payload: %.200r", payload)
            return []

    def send(self, payload: str) -> None:
        """Publish one encoded payload to every process's listener."""
        raise NotImplementedError("subclasses of BaseBroker must provide a send() method")

    # Receiving (the event loop) ----------------------------------------------
    async def listen(self, deliver: Callable[[str | bytes], None], ready: Callable[[], None]):
        """
        Connect, start receiving, call ``ready()``, then ``deliver()`` each payload.

        Return or raise when the connection is lost: the caller waits and calls
        again, with backoff. Never called more than once at a time per process.
        """
        raise NotImplementedError("subclasses of BaseBroker must provide a listen() method")

    def subscribe(
        self, user_id: Any, *, limit: int | None = None, process_limit: int | None = None
    ) -> Subscription:
        """
        Open a mailbox for one of ``user_id``'s streams; call it on the stream's loop.

        Its first wake-up is ``SYNC``, once the listener is connected: from then
        on nothing published is missed. Raise ``TooManySubscriptions`` when the
        user already holds ``limit`` streams in this process, and
        ``ProcessAtCapacity`` when the process holds ``process_limit`` in all.
        """
        subscription = Subscription(self, user_id, self.queue_size)
        with self._lock:
            if process_limit is not None and self._total >= process_limit:
                raise ProcessAtCapacity(process_limit)
            mine = self._subscriptions.setdefault(subscription.user_id, set())
            if limit is not None and len(mine) >= limit:
                if not mine:
                    del self._subscriptions[subscription.user_id]
                raise TooManySubscriptions(user_id)
            mine.add(subscription)
            self._total += 1
        self._ensure_listener()
        if self.connected:
            subscription.put(WakeUp(subscription.user_id, SYNC))
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Remove a mailbox; the listener stops with the process's last stream."""
        with self._lock:
            mine = self._subscriptions.get(subscription.user_id)
            if mine is not None and subscription in mine:
                mine.discard(subscription)
                self._total -= 1
                if not mine:
                    del self._subscriptions[subscription.user_id]
            idle = not self._subscriptions
            listener = self._listener
        if idle and listener is not None:
            self._listener = None
            self.connected = False
            _cancel(listener)

    def subscriber_count(self, user_id: Any = None) -> int:
        """Return how many streams are open here, for one user or for everyone."""
        with self._lock:
            if user_id is not None:
                return len(self._subscriptions.get(str(user_id), ()))
            return self._total

    def deliver(self, payload: str | bytes) -> None:
        """Hand a received payload's wake-ups to the local streams they concern."""
        for wakeup in self.decode(payload):
            if isinstance(wakeup, Sent):
                self.dispatch(wakeup)
                continue
            with self._lock:
                targets = list(self._subscriptions.get(wakeup.user_id, ()))
            for subscription in targets:
                subscription.put(wakeup)

    def dispatch(self, sent: Sent) -> None:
        """
        Read a new message's entries once for every local stream it concerns.

        Runs on the listener's loop: the read goes to a worker thread, and each
        stream then gets its user's entry (``WakeUp.entry``) without a read of
        its own. A publisher in this very process (the in-process broker) may
        call this from any thread.
        """
        with self._lock:
            if sent.user_ids is None:
                users = list(self._subscriptions)
            else:
                users = [u for u in dict.fromkeys(sent.user_ids) if u in self._subscriptions]
            listener = self._listener
        if not users or listener is None or listener.get_loop().is_closed():
            return
        loop = listener.get_loop()

        def start() -> None:
            self._pending_sent.append((sent, users))
            self._sent_arrived.set()
            if self._resolver is None or self._resolver.done():
                self._resolver = loop.create_task(self._resolve())

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            start()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(start)

    async def _resolve(self) -> None:
        """
        Read the new messages heard so far, in order, and hand each stream its entries.

        One task per loop: the messages that arrive while a read runs are read
        next, together, in one trip to the reading thread (one store read each,
        on its one database connection). So each stream gets its entries, and
        the unread counts read with them, in the order they were sent. Once no
        message came for ``SENT_READER_IDLE`` seconds the connection is closed
        and the task ends.
        """
        from ..live import (
            SENT_READER_IDLE,
            collect_soon,
            hold_collections,
            release_sent_reader,
            release_sent_reader_soon,
        )

        released = True
        try:
            while True:
                if not self._pending_sent:
                    self._sent_arrived.clear()
                    try:
                        async with asyncio.timeout(SENT_READER_IDLE):
                            await self._sent_arrived.wait()
                    except TimeoutError:
                        if not self._pending_sent:
                            await release_sent_reader()
                            released = True
                            if not self._pending_sent:
                                return
                    continue
                batch = list(self._pending_sent)
                self._pending_sent.clear()
                released = False
                held = hold_collections(sum(len(users) for _, users in batch))
                try:
                    await self._read_and_hand_out(batch)
                finally:
                    if held:
                        collect_soon()
        finally:
            if not released:  # cancelled with its loop: the connection goes all the same
                release_sent_reader_soon()

    async def _read_and_hand_out(self, batch: list[tuple[Sent, list[str]]]) -> None:
        # A method of its own, so that the entries read are not kept alive, by
        # the waiting _resolve(), until the next message comes.
        from ..live import read_sent

        try:
            results = await read_sent([(sent.message_id, users) for sent, users in batch])
        except Exception:
            # The store did not answer: the streams concerned read for themselves.
            logger.exception("%r could not read new messages for its streams", self)
            results = [{user: WakeUp(user, SYNC) for user in users} for _, users in batch]
        for wakeups in results:
            self._hand_out(wakeups)

    def _hand_out(self, wakeups: dict[str, WakeUp]) -> None:
        with self._lock:
            targets = [
                (subscription, wakeups[user])
                for user in wakeups
                for subscription in self._subscriptions.get(user, ())
            ]
        for subscription, wakeup in targets:
            subscription.put(wakeup)

    def _ready(self) -> None:
        # Anything published while the listener was away was missed: every
        # stream re-reads the store once, and nothing is lost.
        self.connected = True
        with self._lock:
            targets = [sub for subs in self._subscriptions.values() for sub in subs]
        for subscription in targets:
            subscription.put(WakeUp(subscription.user_id, SYNC))

    def _ensure_listener(self) -> None:
        loop = asyncio.get_running_loop()
        listener = self._listener
        if listener is not None and not listener.done() and listener.get_loop() is loop:
            return
        if listener is not None:
            _cancel(listener)  # bound to another (test's) loop that went away
        self.connected = False
        self._pending_sent.clear()
        self._sent_arrived = asyncio.Event()
        self._resolver = None
        self._listener = loop.create_task(self._listen_forever(), name=f"{self!r} listener")

    async def _listen_forever(self) -> None:
        delay = self.backoff_initial
        while True:
            connected = False

            def ready() -> None:
                nonlocal connected, delay
                connected = True
                delay = self.backoff_initial
                self._ready()

            try:
                await self.listen(self.deliver, ready)
                logger.warning("%r lost its connection; reconnecting", self)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("%r lost its connection (%s); reconnecting", self, exc)
            self.connected = False
            # Jitter spreads the reconnections of many processes after an outage.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            if not connected:
                delay = min(delay * 2, self.backoff_max)

    async def aclose(self) -> None:
        """Stop this process's listener and close the broker's connections."""
        listener, self._listener = self._listener, None
        self.connected = False
        if listener is not None and listener.get_loop() is asyncio.get_running_loop():
            listener.cancel()
            await _wait_cancelled(listener)
        elif listener is not None:
            _cancel(listener)
        self.close()

    def close(self) -> None:
        """Close the publishing connection, if the broker keeps one."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class ChannelBroker(BaseBroker):
    """
    A broker that carries wake-ups between processes on one named channel of a server.

    The channel keeps apart the sites that share a server. Publishing reuses one
    connection, made on first use under ``publisher_lock`` and shared by all
    threads; the listener holds its own.
    """

    #: The channel; sites sharing a server need different ones.
    channel: str = "pigeonhole"
    #: Seconds of silence after which the listener checks its connection, so one
    #: that died without a word (a dropped NAT entry) is noticed and replaced.
    ping_interval: float = 30.0
    #: The longest channel name the server takes, and the words that say why.
    channel_limit: tuple[int, str] | None = None

    options = (*BaseBroker.options, "channel", "ping_interval")

    def __init__(self, **options: Any) -> None:
        from django.core.exceptions import ImproperlyConfigured

        super().__init__(**options)
        limit, reason = self.channel_limit or (0, "")
        name = self.channel
        if not isinstance(name, str) or not name or (limit and len(name) > limit):
            within = f" of at most {limit} characters ({reason})" if limit else ""
            raise ImproperlyConfigured(
                f"PIGEONHOLE['BROKER_OPTIONS']['channel'] must be a non-empty string{within}."
            )
        self.publisher_lock = threading.Lock()

    def where(self) -> str:
        """Return where the broker connects, for its repr: no secrets."""
        return ""

    def __repr__(self) -> str:
        where = self.where()
        return f"<{type(self).__name__}{' ' if where else ''}{where} channel={self.channel!r}>"


def _item(wakeup: WakeUp | Sent) -> Any:
    if isinstance(wakeup, Sent):
        to = None if wakeup.user_ids is None else list(wakeup.user_ids)
        return {"sent": wakeup.message_id, "to": to}
    return [wakeup.user_id, wakeup.event, list(wakeup.ids), wakeup.count]


def _smaller(wakeup: WakeUp | Sent) -> WakeUp | Sent:
    # Too big for one payload: a Sent stops listing its recipients (each process
    # asks the store), a WakeUp becomes SYNC (its streams re-read the store).
    if isinstance(wakeup, Sent):
        return Sent(wakeup.message_id)
    return WakeUp(wakeup.user_id, SYNC)


def _from_item(item: Any) -> WakeUp | Sent:
    if isinstance(item, dict):
        to = item["to"]
        return Sent(item["sent"], None if to is None else tuple(to))
    user_id, event, ids, count = item
    return WakeUp(str(user_id), str(event), tuple(ids), count)


def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` from any thread, if its loop still runs."""
    loop = task.get_loop()
    if loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        task.cancel()
    else:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(task.cancel)


async def _wait_cancelled(task: Awaitable[Any]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await task
