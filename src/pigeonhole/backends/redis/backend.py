"""
``RedisBackend``: the store's connection, errors and the calls of its scripts.

Every change that touches more than one key runs as one Lua script (see
``scripts``), so Redis applies it whole or not at all and no other client sees
it half done: an unread count never disagrees with the entries it counts.
Fan-out to many recipients is one script per chunk of recipients.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.sentinel
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from ... import versions
from ...conf import pigeonhole_settings
from ...exceptions import BackendUnavailable
from ...message import NewMessage, StoredMessage
from ..base import BaseBackend, Change, InboxQuery, InboxState, Outcome, Recipients, SentMessage
from . import scripts
from .encoding import content_fields, decode_entry, dt, ts
from .keys import Keys

__all__ = ["RedisBackend"]

#: The user's sorted set each listing state walks ("claim": unread, marked read as read).
_STATE_ZSETS = {
    "unread": "unread",
    "claim": "unread",
    "read": "all",
    "all": "all",
    "archived": "archived",
    "saved": "saved",
}


def _dated(message: NewMessage) -> NewMessage:
    """Return ``message`` with its creation time set: now, unless it has one."""
    return message if message.created else dataclasses.replace(message, created=timezone.now())


#: Options handed to ``redis.Redis.from_url`` as they are.
POOL_OPTIONS = (
    "max_connections",
    "socket_timeout",
    "socket_connect_timeout",
    "health_check_interval",
)


#: Options that reach the primary through Redis Sentinel instead of ``url``.
SENTINEL_OPTIONS = ("sentinels", "service_name", "db", "username", "password")


def _sentinel_addresses(sentinels: Any) -> list[tuple[str, int]]:
    """Return ``["host:port", ...]`` as ``(host, port)`` pairs, or raise naming the fix."""
    pairs = []
    if isinstance(sentinels, list | tuple) and sentinels:
        for item in sentinels:
            host, _, port = str(item).rpartition(":") if isinstance(item, str) else ("", "", "")
            if not host or not port.isdigit():
                break
            pairs.append((host, int(port)))
        else:
            return pairs
    raise ImproperlyConfigured(
        f"PIGEONHOLE['OPTIONS']['sentinels'] = {sentinels!r} is not a list of Sentinel "
        "addresses; use ['10.0.0.1:26379', '10.0.0.2:26379'] with 'service_name'."
    )


def _redacted(url: str) -> str:
    """Return ``url`` with any password masked, fit for an error message or a log."""
    parts = urlsplit(url)
    if parts.password is not None:
        masked = f"{parts.username or ''}:***@{parts.netloc.rpartition('@')[2]}"
        url = url.replace(f"//{parts.netloc}", f"//{masked}", 1)
    if parts.query:
        query = "&".join(
            "password=***" if item.partition("=")[0].lower() == "password" else item
            for item in parts.query.split("&")
        )
        url = url.replace(f"?{parts.query}", f"?{query}", 1)
    return url


class RedisBackend(BaseBackend):
    """
    Store messages in Redis.

    ``OPTIONS = {"url": "redis://host:6379/0"}``, plus ``key_prefix`` (two sites
    sharing one Redis need different ones) and the connection pool settings
    ``max_connections``, ``socket_timeout``, ``socket_connect_timeout`` and
    ``health_check_interval``. Behind Redis Sentinel, give ``sentinels``
    (``["host:26379", ...]``) and ``service_name`` instead of ``url``, and
    ``db``, ``username``, ``password`` as needed: every call goes to the
    primary the Sentinels name. Nothing connects until the first call.
    """

    #: Prefix of every key, so several sites (or test runs) can share a database.
    key_prefix = "pigeonhole"
    #: Seconds to wait for a connection and for an answer; None waits for ever.
    socket_connect_timeout: float | None = 5.0
    socket_timeout: float | None = 5.0
    #: Recipients written per script during a send.
    chunk_size = 2000
    #: Entries one script looks at before handing back to Python, so a long
    #: scan (a filtered listing, a purge) never blocks Redis for long.
    scan_batch = 1000
    #: Seconds after which an unfinished send is taken to have died, so purge
    #: may collect its content.
    send_timeout = 3600

    def __init__(
        self, *, url: str | None = None, key_prefix: str | None = None, **options: Any
    ) -> None:
        unknown = sorted(set(options) - set(POOL_OPTIONS) - set(SENTINEL_OPTIONS))
        if unknown:
            raise ImproperlyConfigured(
                f"RedisBackend got unknown option(s) {', '.join(unknown)} in "
                f"PIGEONHOLE['OPTIONS']; it takes url, key_prefix, {', '.join(POOL_OPTIONS)}, "
                f"or, behind Sentinel, {', '.join(SENTINEL_OPTIONS)} instead of url."
            )
        sentinel = {name: options.pop(name) for name in SENTINEL_OPTIONS if name in options}
        self.sentinels: list[tuple[str, int]] = []
        if sentinel:
            url = self._sentinel(url, sentinel)
        elif not url or not isinstance(url, str):
            raise ImproperlyConfigured(
                "RedisBackend needs the address of its Redis server: set "
                "PIGEONHOLE['OPTIONS'] = {'url': 'redis://localhost:6379/0'}."
            )
        if urlsplit(url).scheme.endswith("+cluster"):
            raise ImproperlyConfigured(
                f"PIGEONHOLE['OPTIONS']['url'] = {_redacted(url)!r} names a Redis Cluster, "
                "which RedisBackend does not run on yet (its entries, contents and shared "
                "indexes span hash slots); use a standalone server, with Sentinel for failover."
            )
        if not self.sentinels and urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ImproperlyConfigured(
                f"PIGEONHOLE['OPTIONS']['url'] = {_redacted(url)!r} is not a Redis URL; "
                "use redis://host:port/db, rediss:// for TLS, or unix:///path/to/socket."
            )
        if key_prefix is not None:
            self.key_prefix = key_prefix
        if not isinstance(self.key_prefix, str) or not self.key_prefix.strip():
            raise ImproperlyConfigured(
                "PIGEONHOLE['OPTIONS']['key_prefix'] must be a non-empty string such as 'mysite'."
            )
        if "{" in self.key_prefix or "}" in self.key_prefix:
            # A brace would make Redis Cluster hash the prefix, not the user.
            raise ImproperlyConfigured(
                f"PIGEONHOLE['OPTIONS']['key_prefix'] = {self.key_prefix!r} has a brace; "
                "leave out { and }, which Redis reserves for hash tags."
            )
        super().__init__(url=url, key_prefix=self.key_prefix, **options, **sentinel)
        self.url = url
        self.pool_options = {
            "socket_connect_timeout": self.socket_connect_timeout,
            "socket_timeout": self.socket_timeout,
            **options,
        }
        self.keys = Keys(self.key_prefix)
        self._client: redis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._highest: dict[str, int] = {}
        self._lock = threading.Lock()

    def _sentinel(self, url: str | None, sentinel: dict[str, Any]) -> str:
        """Check the Sentinel options; return how messages name the store."""
        if url:
            raise ImproperlyConfigured(
                "PIGEONHOLE['OPTIONS'] has both 'url' and Sentinel options; behind Sentinel, "
                "leave out 'url': 'sentinels' and 'service_name' find the primary."
            )
        self.sentinels = _sentinel_addresses(sentinel.get("sentinels"))
        name = sentinel.get("service_name")
        if not isinstance(name, str) or not name:
            raise ImproperlyConfigured(
                "PIGEONHOLE['OPTIONS']['service_name'] must name the primary the Sentinels "
                "watch, such as 'mymaster' (their 'sentinel monitor' line)."
            )
        self.sentinel_options = {k: v for k, v in sentinel.items() if k != "sentinels"}
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"sentinel://{hosts}/{name}"

    def _connect(self) -> redis.Redis:
        """Return a new client: to ``url``, or to the primary the Sentinels name."""
        if not self.sentinels:
            return redis.Redis.from_url(self.url, decode_responses=True, **self.pool_options)
        timeouts = {
            "socket_timeout": self.pool_options["socket_timeout"],
            "socket_connect_timeout": self.pool_options["socket_connect_timeout"],
        }
        options = dict(self.sentinel_options)
        name = options.pop("service_name")
        sentinel = redis.sentinel.Sentinel(self.sentinels, **timeouts)
        return sentinel.master_for(name, decode_responses=True, **options, **self.pool_options)

    def __repr__(self) -> str:
        return f"<RedisBackend {_redacted(self.url)} key_prefix={self.key_prefix!r}>"

    # Connection -------------------------------------------------------------
    def get_client(self) -> redis.Redis:
        """
        Return the client, building it and its pool on first use.

        One pool per backend instance, and ``conf.get_backend()`` keeps one
        instance per process: every request shares the same connections.
        """
        if self._client is None:
            with self._lock:
                if self._client is None:
                    client = self._connect()
                    # register_script only hashes the source: nothing is sent yet.
                    self._scripts = {
                        name: client.register_script(source)
                        for name, source in scripts.sources().items()
                    }
                    self._client = client
        return self._client

    def close(self) -> None:
        """Close the pool's connections; the next call opens new ones."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn redis-py's errors into ``BackendUnavailable``, naming the server."""
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            reason = str(exc).rstrip(". ") or type(exc).__name__
            raise BackendUnavailable(
                f"The Redis message store at {_redacted(self.url)} cannot be reached: {reason}. "
                "Check that Redis is running and that PIGEONHOLE['OPTIONS']"
                f"[{'sentinels' if self.sentinels else 'url'!r}] points at it."
            ) from exc
        except redis.RedisError as exc:
            reason = str(exc).rstrip(". ") or type(exc).__name__
            raise BackendUnavailable(
                f"The Redis message store at {_redacted(self.url)} refused a command: {reason}. "
                "Check the server's memory and role (a replica is read-only), and that no other "
                f"application writes keys under the prefix {self.key_prefix!r}."
            ) from exc

    def _run(self, name: str, args: Sequence[Any], keys: Sequence[str] = ()) -> Any:
        self.get_client()
        return self._scripts[name](keys=list(keys), args=[self.key_prefix, *args])

    # Writing ----------------------------------------------------------------
    @staticmethod
    def _distinct(recipients: Recipients) -> Recipients:
        """Return ``recipients`` with each user once, as the fan-out needs them."""
        if recipients.queryset is None:
            return recipients
        queryset = recipients.queryset
        if queryset.query.is_sliced:
            # A slice cannot be made distinct: take its ids.
            ids = queryset.values_list("pk", flat=True)
            return Recipients(ids=list(dict.fromkeys(ids)))
        # Groups can name a user twice; the database makes them distinct.
        return Recipients(queryset=queryset.order_by().distinct())

    def _reserve(self, name: str, count: int) -> int:
        """Take ``count`` ids of the ``name`` counter; return the first."""
        first = int(self._run("reserve", [ts(timezone.now()), name, count, self._floor(name)]))
        self._saw(name, first + count - 1)
        return first

    def _floor(self, name: str) -> int:
        """Return the highest id of the ``name`` counter this process has seen."""
        return self._highest.get(name, 0)

    def _saw(self, name: str, highest: Any) -> None:
        """
        Remember an id this process handed out, as a floor for the next ones.

        Should Redis come back without its data, ids still grow past every id
        this process gave out, even those a bulk reservation took ahead of the clock.
        """
        with self._lock:
            self._highest[name] = max(self._highest.get(name, 0), int(highest))

    def _send(self, message: NewMessage, recipients: Recipients) -> SentMessage:
        """
        Store the content once, then give recipients entries a chunk at a time.

        Each chunk's ids are reserved just before it is written, so the
        recipients are read as the send goes, never all held in memory.
        """
        chunks = (
            (self._reserve("entry", len(chunk)), chunk)
            for chunk in self._distinct(recipients).iter_ids(self.chunk_size)
        )
        mid, count = self._write_send(message, "", chunks)
        return SentMessage(id=int(mid), recipient_count=count)

    def _reserve_send(self, message: NewMessage, recipients: Recipients):
        """
        Read the recipients and reserve every id now; write them on commit.

        The ids (one ``INCRBY`` for all of them) are the ones the entries will
        have, so they sort after every entry written before this call.
        """
        message = _dated(message)
        ids = [pk for chunk in self._distinct(recipients).iter_ids(self.chunk_size) for pk in chunk]
        if message.thread is not None:
            # The count reported now leaves out who muted the thread; the
            # fan-out script skips them again when it writes.
            ids = list(self.unmuted(Recipients(ids=ids), message.thread).ids)
        with self._errors():
            mid = self._reserve("message", 1)
            first = self._reserve("entry", len(ids)) if ids else 0
        chunks = [
            (first + start, ids[start : start + self.chunk_size])
            for start in range(0, len(ids), self.chunk_size)
        ]
        sent = SentMessage(id=mid, recipient_count=len(ids))
        return sent, lambda: self._write_send(message, mid, chunks)

    def _write_send(self, message: NewMessage, mid: Any, chunks) -> tuple[Any, int]:
        """
        Write a send's content, then its ``(first id, user ids)`` chunks; return the content id.

        Each chunk is atomic. If the send fails part way (the recipients query
        raises, Redis goes away), the entries written so far and the content
        are taken back, as far as Redis still answers; after a timeout they are
        left for ``purge()``, so the caller waits one socket timeout, not two.
        """
        created = message.created or timezone.now()
        expires = "" if message.expires is None else ts(message.expires)
        with self._errors():
            mid = self._run(
                "create",
                [
                    ts(timezone.now()),
                    mid,
                    self._floor("message"),
                    *content_fields(message, created),
                ],
            )
            self._saw("message", mid)
        written: list[tuple[int, int]] = []
        count = 0
        try:
            with self._errors():
                for first, chunk in chunks:
                    # The ids are reserved: a failure knows which to take back.
                    written.append((first, len(chunk)))
                    count += self._run(
                        "fanout",
                        [
                            ts(timezone.now()),
                            mid,
                            ts(created),
                            expires,
                            first,
                            message.thread or "",
                            *map(str, chunk),
                        ],
                    )
                self._run("finish", [ts(timezone.now()), mid])
        except BaseException as exc:
            if not isinstance(exc.__cause__, redis.TimeoutError):
                # Redis that stopped answering would make the caller wait a second
                # socket timeout for nothing; purge takes the send back instead.
                self._withdraw(mid, written)
            raise
        return mid, count

    def _withdraw(self, mid: Any, written: Sequence[tuple[int, int]]) -> None:
        """Take back a failed send, as far as Redis still answers."""
        # The original error is the one worth raising. The content stays
        # flagged as sending, and once send_timeout has passed, purge takes
        # back the entries it reached and the content.
        with suppress(redis.RedisError):
            self._take_back(mid, written)

    def _take_back(self, mid: Any, written: Sequence[tuple[int, int]]) -> None:
        """Remove the entries of a send's ``(first id, count)`` ranges, then its content."""
        now = ts(timezone.now())
        for first, size in written:
            self._run("withdraw", [now, mid, first, size])
        self._run("drop_message", [now, mid])

    def _stale_sends(self, oldest_live_send: str) -> list[str]:
        """Return the contents of sends begun before ``oldest_live_send`` and never finished."""
        return self._members(self.keys.shared("sending"), "-inf", f"({oldest_live_send}")

    def _purge_stale_sends(self, oldest_live_send: str) -> int:
        """
        Take back every send cut off mid-way (Redis went away, the process died).

        Its content's ``ranges`` name the entry ids it reserved chunk by chunk,
        so the entries it reached go too: none is left half-delivered.
        """
        client = self.get_client()
        stale = self._stale_sends(oldest_live_send)
        for mid in stale:
            ranges = str(client.hget(self.keys.content(mid), "ranges") or "")
            written = [
                (int(first), int(size))
                for first, _, size in (item.partition(":") for item in ranges.split(","))
                if size
            ]
            self._take_back(mid, written)
        return len(stale)

    def _add(self, message: NewMessage, user_id: Any) -> StoredMessage:
        return self._write_add(message, user_id, "", "")

    def _reserve_add(self, message: NewMessage, user_id: Any):
        message = _dated(message)
        with self._errors():
            mid, entry_id = self._reserve("message", 1), self._reserve("entry", 1)
        stored = self._added(message, user_id, mid, entry_id)
        return stored, lambda: self._write_add(message, user_id, mid, entry_id)

    def _write_add(self, message: NewMessage, user_id: Any, mid: Any, entry_id: Any):
        created = message.created or timezone.now()
        with self._errors():
            mid, entry_id, noted = self._run(
                "add",
                [
                    ts(timezone.now()),
                    ts(created),
                    "" if message.expires is None else ts(message.expires),
                    str(user_id),
                    mid,
                    entry_id,
                    self._floor("message"),
                    self._floor("entry"),
                    *content_fields(message, created),
                ],
            )
        self._saw("message", mid)
        self._saw("entry", entry_id)
        stored = self._added(message, user_id, mid, entry_id)
        stored.noted = bool(noted)  # type: ignore[attr-defined]  # see BaseBackend._add()
        return stored

    @staticmethod
    def _added(message: NewMessage, user_id: Any, mid: Any, entry_id: Any) -> StoredMessage:
        """Return the entry an add writes, as a later read returns it."""
        created = message.created or timezone.now()
        return StoredMessage.from_new(
            message,
            id=int(entry_id),
            message_id=int(mid),
            user_id=user_id,
            created=dt(ts(created)),
            expires=dt(ts(message.expires)) if message.expires is not None else None,
        )

    # Reading ----------------------------------------------------------------
    def _list(self, user_id: Any, query: InboxQuery) -> list[StoredMessage]:
        """
        Return the user's entries, newest first, keyset-paged by ``after``.

        Without filters this reads ``limit`` entries and their contents in one
        round trip; filters are applied inside Redis, which scans on in
        batches of ``scan_batch`` until ``limit`` entries match.
        """
        return self._scan(user_id, query, timezone.now())

    def _scan(self, user_id: Any, query: InboxQuery, now: datetime) -> list[StoredMessage]:
        """Run the listing script; the state ``claim`` also marks what it reads read."""
        state, limit = query.state, query.limit
        zset = _STATE_ZSETS[state]
        cursor = "+inf" if query.after is None else f"({int(query.after)}"
        args = [
            ts(now),
            str(user_id),
            state,
            None,  # the cursor, filled in each round
            None,  # how many rows are still wanted
            self.scan_batch,
            "" if query.since is None else ts(query.since),
            "" if query.before is None else ts(query.before),
            query.tag or "",
            query.reason or "",
            self._noted_ttl(query),
            *(str(int(level)) for level in query.levels or ()),
        ]
        rows: list[Any] = []
        with self._errors():
            while len(rows) < limit and cursor:
                args[3], args[4] = cursor, limit - len(rows)
                cursor, found = self._run("list", args, keys=[self.keys.user(user_id, zset)])
                rows += found
        return [decode_entry(user_id, row) for row in rows]

    @staticmethod
    def _noted_ttl(query: InboxQuery) -> int | str:
        """
        Return how long an empty listing flags the inbox as possibly noted, or ''.

        Only an unfiltered unread listing (or claim) can lead a page to note an
        empty inbox; the flag tells the next add to renew the user's version,
        and outlives any note, as the version itself does.
        """
        noting = query.state in ("unread", "claim") and query.plain
        return versions.TIMEOUT if noting and pigeonhole_settings.CACHE else ""

    def _claim_unread(self, user_id: Any, limit: int, now: datetime) -> list[StoredMessage]:
        """
        Read the newest unread entries and mark them read in one script.

        Another round trip only when more than ``scan_batch`` expired entries
        sit among the unread ones, as with ``_list()``.
        """
        return self._scan(user_id, InboxQuery("claim", limit=limit), now)

    def _get(self, user_id: Any, entry_id: Any) -> StoredMessage | None:
        with self._errors():
            row = self._run("get", [ts(timezone.now()), str(user_id), str(entry_id)])
        return decode_entry(user_id, row) if row else None

    def _count(self, user_id: Any) -> int:
        """
        Return the unread count: the unread set's size less its expired members.

        Both are O(log n), so a user with thousands of unread entries costs no
        more than one with three; MULTI reads both at the same instant.
        """
        with self._errors():
            pipe = self.get_client().pipeline(transaction=True)
            pipe.zcard(self.keys.user(user_id, "unread"))
            pipe.zcount(self.keys.user(user_id, "unread_exp"), "-inf", ts(timezone.now()))
            total, expired = pipe.execute()
        return total - expired

    def _counts(self, user_id: Any) -> dict[str, int]:
        """
        Count the three tabs in one script.

        Entries carry their expiry, so ``all`` and ``archived`` look at each of
        the user's entries: fine for a page a user opens, which is all this is for.
        """
        with self._errors():
            counts = self._run("counts", [ts(timezone.now()), str(user_id)])
        return dict(zip(("unread", "all", "archived", "saved"), map(int, counts), strict=True))

    def state(self, user_id: Any) -> InboxState:
        """
        Return the inbox in brief with one script.

        Every script that changes a user's entries bumps that user's change
        counter, which makes the version; the highest unread level takes a look
        at each unread entry, which stays cheap as long as people read.
        """
        with self._errors():
            unread, top, changes, when, last, last_archived, expired, unseen = self._run(
                "state", [ts(timezone.now()), str(user_id)]
            )
        key = f"{changes}|{last}|{last_archived}|{expired}"
        return InboxState(
            unread=int(unread),
            max_level=int(top) if top else None,
            version=hashlib.sha256(key.encode()).hexdigest()[:32],
            modified=dt(when),
            unseen=int(unseen),
        )

    # Changing state ---------------------------------------------------------
    def muted_threads(self, user_id: Any) -> list[str]:
        with self._errors():
            threads: set[str] = self.get_client().smembers(self.keys.user(user_id, "muted"))  # type: ignore[assignment]
        return sorted(threads)

    def unmuted(self, recipients: Recipients, thread: str) -> Recipients:
        """Ask Redis about a chunk of recipients at a time, one pipeline each."""
        kept: list[Any] = []
        with self._errors():
            for chunk in self._distinct(recipients).iter_ids(self.chunk_size):
                pipe = self.get_client().pipeline(transaction=False)
                for pk in chunk:
                    pipe.sismember(self.keys.user(pk, "muted"), thread)
                kept += [pk for pk, muted in zip(chunk, pipe.execute(), strict=True) if not muted]
        return Recipients(ids=kept)

    def _mute(self, user_id: Any, thread: str, muted: bool) -> bool:
        args = [ts(timezone.now()), str(user_id), thread, "1" if muted else ""]
        with self._errors():
            return bool(self._run("mute", args))

    def _unseen_count(self, user_id: Any) -> int:
        with self._errors():
            return int(self._run("unseen", [ts(timezone.now()), str(user_id)]))

    def _mark_seen(self, user_id: Any, before: Any, now: datetime) -> list[Any]:
        """Stamp as seen the unseen entries up to the watermark, as mark_all_read() reads."""
        return self._mark_all_read(user_id, before, now, seen=True)

    def _export_entries(self, user_id: Any) -> list[StoredMessage]:
        """Read the ids of every entry of the user in one script, then the entries in batches."""
        return self._entries(user_id, "")

    def _thread_messages(self, user_id: Any, entry: StoredMessage) -> list[StoredMessage]:
        """Read the user's history of the thread: its sorted set, then the entries."""
        return self._entries(user_id, entry.thread or "") or [entry]

    def _entries(self, user_id: Any, thread: str) -> list[StoredMessage]:
        """Return the user's entries (of ``thread``, if given), oldest first, folded ones too."""
        now, rows = ts(timezone.now()), []
        with self._errors():
            ids = self._run("export", [now, str(user_id), thread])
            for start in range(0, len(ids), self.scan_batch):
                chunk = ids[start : start + self.scan_batch]
                rows += self._run("export", [now, str(user_id), thread, *chunk])
        return [decode_entry(user_id, row) for row in rows]

    def _change(self, user_id: Any, change: Change) -> Outcome:
        """
        Apply the change to the user's entries in one script.

        The script checks ownership and visibility itself, in the same atomic
        step as the change: nothing can slip in between the check and the write.
        Report the ids changed newest first, as the database backend does.
        """
        given = {str(pk): pk for pk in change.ids}
        if change.action == "expire":
            arg = ts(change.expires)  # type: ignore[arg-type]  # expire() always sets it
        else:
            arg = "1" if change.allow_unread else ""
        flags = ["1" if change.strict else "", "1" if change.dry_run else ""]
        args = [ts(change.now), str(user_id), change.action, arg, *flags]
        with self._errors():
            status, result = self._run("change", [*args, *given])
        if status == "missing":
            return Outcome([], missing=[given[pk] for pk in result])
        if status == "unread":
            return Outcome([], unread=[int(pk) for pk in result])
        if status == "saved":
            return Outcome([], saved=[int(pk) for pk in result])
        return Outcome(sorted((int(pk) for pk in result), reverse=True))

    def _mark_all_read(
        self, user_id: Any, before: Any, now: datetime, *, dry_run: bool = False, seen: bool = False
    ) -> list[Any]:
        """
        Mark read (or, with ``seen``, seen) the user's unread, unarchived entries up to a watermark.

        The entries are marked a chunk per script, oldest first, up to the
        highest entry id handed out when the call began: one that arrives
        meanwhile stays unread, however long a big inbox takes.
        """
        now = ts(now)  # type: ignore[assignment]
        created_before = ""
        changed: list[Any] = []
        with self._errors():
            if isinstance(before, datetime):
                created_before = ts(before)
                highest = self.get_client().get(self.keys.shared("ids:entry")) or "0"
            elif before is not None:
                highest = str(int(before))
            else:
                highest = self.get_client().get(self.keys.shared("ids:entry")) or "0"
            cursor = "-inf"
            while True:
                scanned, last, ids = self._run(
                    "mark_all",
                    [
                        now,
                        str(user_id),
                        highest,
                        created_before,
                        cursor,
                        self.scan_batch,
                        "1" if dry_run else "",
                        "1" if seen else "",
                    ],
                )
                changed += ids
                if scanned < self.scan_batch:
                    break
                cursor = f"({last}"
        return sorted((int(pk) for pk in changed), reverse=True)

    # Housekeeping -----------------------------------------------------------
    def purge(
        self,
        *,
        expired: bool = True,
        read_before: datetime | None = None,
        dry_run: bool = False,
    ) -> dict[str, int]:
        """
        Remove expired entries, read ones older than ``read_before``, then
        contents left without entries.

        Each script removes at most ``scan_batch`` entries, so purging millions
        never blocks Redis for long. A dry run reads what a purge would remove
        and removes nothing.
        """
        now = ts(timezone.now())
        counts = {"expired": 0, "read": 0, "messages": 0}
        with self._errors():
            if dry_run:
                return self._dry_run(now, expired, read_before)
            if expired:
                while True:
                    scanned, removed = self._run("purge_expired", [now, self.scan_batch])
                    counts["expired"] += removed
                    if scanned < self.scan_batch:
                        break
            if read_before is not None:
                while True:
                    scanned, read, gone = self._run(
                        "purge_read",
                        [now, ts(read_before), self.scan_batch, "1" if expired else ""],
                    )
                    counts["read"] += read
                    counts["expired"] += gone
                    if scanned < self.scan_batch:
                        break
            oldest_live_send = repr(float(now) - self.send_timeout)
            counts["messages"] += self._purge_stale_sends(oldest_live_send)
            client = self.get_client()
            batch: list[str] = []
            for mid in client.sscan_iter(self.keys.shared("orphans"), count=self.scan_batch):
                batch.append(mid)
                if len(batch) >= self.scan_batch:
                    counts["messages"] += self._run(
                        "purge_orphans", [now, oldest_live_send, *batch]
                    )
                    batch = []
            if batch:
                counts["messages"] += self._run("purge_orphans", [now, oldest_live_send, *batch])
        return counts

    # Email ------------------------------------------------------------------
    def _stored_any(self, row: Sequence[Any]) -> StoredMessage:
        """Build the entry of a row whose user the caller did not name."""
        raw = row[1][0]
        return decode_entry(int(raw) if raw.isdigit() else raw, row)

    def unmailed_for_message(
        self, message_id: Any, *, after: Any = None, limit: int = 500
    ) -> list[StoredMessage]:
        """
        Return the message's entries not emailed yet, read from the id ranges
        its send reserved (kept in the content hash as ``ranges``).
        """
        cursor = "" if after is None else str(int(after))
        rows: list[Any] = []
        with self._errors():
            while len(rows) < limit:
                cursor, found = self._run(
                    "unmailed_for_message",
                    [
                        ts(timezone.now()),
                        str(message_id),
                        cursor,
                        limit - len(rows),
                        self.scan_batch,
                    ],
                )
                rows += found
                if not cursor:
                    break
        return [self._stored_any(row) for row in rows]

    def unmailed_due(
        self, created_before: datetime, *, limit: int = 500, offset: int = 0
    ) -> list[StoredMessage]:
        """Read the ``unmailed`` index (unread entries not emailed, by creation time)."""
        rows: list[Any] = []
        with self._errors():
            while len(rows) < limit:
                want = min(self.scan_batch, limit - len(rows))
                scanned, found = self._run(
                    "unmailed_due", [ts(timezone.now()), ts(created_before), offset, want]
                )
                rows += found
                offset += scanned
                if scanned < want:
                    break
        return [self._stored_any(row) for row in rows]

    def claim_email(self, ids: Sequence[Any], when: datetime) -> list[Any]:
        if not ids:
            return []
        with self._errors():
            claimed = self._run("claim_email", [ts(when), *map(str, ids)])
        return [int(pk) for pk in claimed]

    def release_email(self, ids: Sequence[Any], when: datetime) -> list[Any]:
        if not ids:
            return []
        now = ts(timezone.now())
        with self._errors():
            released = self._run("release_email", [now, ts(when), *map(str, ids)])
        return [int(pk) for pk in released]

    def forget_user(self, user_id: Any) -> int:
        """Delete the user's entries one bounded script at a time, as purge() does."""
        removed = 0
        now = ts(timezone.now())
        with self._errors():
            while True:
                scanned, gone = self._run("forget_user", [now, str(user_id), self.scan_batch])
                removed += gone
                if scanned == 0:
                    return removed

    def _members(self, key: str, low: str, high: str) -> list[str]:
        """Return a sorted set's members scored from ``low`` to ``high``, in batches."""
        found: list[Any] = []  # redis-py types its replies loosely
        client, offset = self.get_client(), 0
        while batch := client.zrangebyscore(key, low, high, start=offset, num=self.scan_batch):
            found += batch
            offset += len(batch)
        return found

    def _dry_run(self, now: str, expired: bool, read_before: datetime | None) -> dict[str, int]:
        client = self.get_client()
        doomed_expired = (
            set(self._members(self.keys.shared("expiring"), "-inf", now)) if expired else set()
        )
        doomed_read: set[str] = set()
        if read_before is not None:
            doomed_read = set(
                self._members(self.keys.shared("read"), "-inf", f"({ts(read_before)}")
            )
            doomed_read -= doomed_expired
        doomed = sorted(doomed_expired | doomed_read)
        # Contents that would lose their last entry, and those that have none already.
        losing: Counter[str] = Counter()
        for start in range(0, len(doomed), self.scan_batch):
            chunk = doomed[start : start + self.scan_batch]
            pipe = client.pipeline(transaction=False)
            for entry_id in chunk:
                pipe.hmget(self.keys.entry(entry_id), "m", "u")
            rows = pipe.execute()
            losing.update(mid for mid, _ in rows if mid is not None)
            losing.update(self._history_contents(list(zip(chunk, rows, strict=True))))
        oldest_live_send = float(now) - self.send_timeout
        stale = set(self._stale_sends(repr(oldest_live_send)))
        orphans = client.sscan_iter(self.keys.shared("orphans"), count=self.scan_batch)
        candidates = [mid for mid in dict.fromkeys([*losing, *orphans]) if mid not in stale]
        messages = 0
        for start in range(0, len(candidates), self.scan_batch):
            chunk = candidates[start : start + self.scan_batch]
            pipe = client.pipeline(transaction=False)
            for mid in chunk:
                pipe.hmget(self.keys.content(mid), "refs", "sending")
            for mid, (refs, sending) in zip(chunk, pipe.execute(), strict=True):
                if refs is None or int(refs) > losing[mid]:
                    continue
                if sending is None or float(sending) < oldest_live_send:
                    messages += 1
        return {
            "expired": len(doomed_expired),
            "read": len(doomed_read),
            "messages": messages + len(stale),
        }

    def _history_contents(self, rows: Sequence[tuple[str, Sequence[Any]]]) -> list[str]:
        """Return the contents of the folded entries that go with ``(row id, (content, user))``."""
        client = self.get_client()
        pipe = client.pipeline(transaction=False)
        for _, (mid, _user) in rows:
            pipe.hget(self.keys.content(mid or ""), "thread")
        threads = pipe.execute()
        pipe = client.pipeline(transaction=False)
        rows_of_threads = []
        for (entry_id, (_mid, user)), thread in zip(rows, threads, strict=True):
            if thread is not None and user is not None:
                rows_of_threads.append((entry_id, user, thread))
                pipe.hget(self.keys.user(user, "threads"), thread)
                pipe.zrange(self.keys.history(user, thread), 0, -1)
        found = pipe.execute()
        folded = [
            old
            for (entry_id, _, _), row, history in zip(
                rows_of_threads, found[::2], found[1::2], strict=True
            )
            if row == entry_id
            for old in history
            if old != entry_id
        ]
        pipe = client.pipeline(transaction=False)
        for old in folded:
            pipe.hget(self.keys.entry(old), "m")
        return [mid for mid in pipe.execute() if mid is not None]

    # Live delivery ----------------------------------------------------------
    #: Users per script: a broadcast to a process's 10,000 streams is one round trip.
    deliveries_chunk = 10_000

    def deliveries(self, message_id: Any, user_ids: Sequence[Any]) -> list[tuple[Any, int]]:
        """Read the users' entries of one message and their counts in one script per chunk."""
        users = [str(user_id) for user_id in user_ids]
        found: list[tuple[Any, int]] = []
        with self._errors():
            for start in range(0, len(users), self.deliveries_chunk):
                chunk = users[start : start + self.deliveries_chunk]
                rows, content = self._run(
                    "deliveries", [ts(timezone.now()), str(message_id), *chunk]
                )
                for entry_id, entry, unread in rows:
                    found.append((self._stored_any([entry_id, entry, content]), int(unread)))
        return found

    def replaced(self, entries: Sequence[StoredMessage]) -> dict[Any, Any]:
        """Read the rows the entries folded, from their thread histories: one script a chunk."""
        users = {entry.id: entry.user_id for entry in entries}
        args = [str(arg) for e in entries for arg in (e.user_id, e.thread or "", e.id)]
        found: dict[Any, Any] = {}
        step = 3 * self.deliveries_chunk
        with self._errors():
            for start in range(0, len(args), step):
                rows = self._run("replaced", [ts(timezone.now()), *args[start : start + step]])
                for entry_id, *row in rows:
                    found[int(entry_id)] = decode_entry(users[int(entry_id)], row)
        return found
