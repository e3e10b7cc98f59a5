"""
``RedisBackend``: the store's connection, errors and the calls of its scripts.

Every change that touches more than one key runs as one Lua script (see
``scripts``), so Redis applies it whole or not at all and no other client sees
it half done: an unread count never disagrees with the entries it counts.
Each script works in one slot group (see ``keys``), so the same calls run on a
single Redis and on Redis Cluster. Fan-out to many recipients is one script
per group and chunk of recipients, pipelined; the jobs that read across users
(purge, digests, email claims) run their scripts in every group.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
import zlib
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import redis
import redis.cluster
import redis.sentinel
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from redis.exceptions import NoScriptError, RedisClusterException

from ... import versions
from ...conf import pigeonhole_settings
from ...exceptions import BackendUnavailable
from ...message import NewMessage, StoredMessage
from ..base import BaseBackend, Change, InboxQuery, InboxState, Outcome, Recipients, SentMessage
from . import scripts
from .encoding import content_fields, decode_entry, dt, ts
from .keys import GROUPS, LAYOUT, Keys, group_of

if TYPE_CHECKING:  # the hook's argument, built by the base class
    from ..base import Purge

__all__ = ["RedisBackend"]


def _by_group(first: int, user_ids: Sequence[Any], most: int) -> list[tuple[int, int, list[str]]]:
    """
    Split a chunk of recipients whose entry ids start at ``first`` by slot
    group, in parts of at most ``most`` users: ``(group, the part's first
    entry id, its user ids)``.

    The groups come in the order of their first user, so recipients who
    share none get ids in their own order. This runs once per recipient of
    a send, so the ids are turned into text and hashed (as ``group_of()``
    does) by ``map()``, leaving one append per id to Python.
    """
    names = list(map(str, user_ids))
    crcs = map(zlib.crc32, map(str.encode, names))
    group_of_each = list(map(GROUPS.__rmod__, crcs))  # crc % GROUPS
    groups: list[list[str]] = [[] for _ in range(GROUPS)]
    add = [users.append for users in groups]
    for group, name in zip(group_of_each, names, strict=True):
        add[group](name)
    found, start = [], first
    for group in dict.fromkeys(group_of_each):
        users = groups[group]
        for part in range(0, len(users), most):
            found.append((group, start + part, users[part : part + most]))
        start += len(users)
    return found


#: A character a user id cannot carry into a JSON string as it is.
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def _json_array(names: list[str]) -> str:
    """
    Return ``names`` as a JSON array, the one argument that carries a
    fan-out script's users: joined as they are when no id needs escaping
    (digits never do), which is several times quicker than ``json.dumps()``.
    """
    joined = '","'.join(names)
    if _NEEDS_ESCAPE.search(joined):
        return json.dumps(names)
    return f'["{joined}"]'


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


#: URL schemes that name a Redis Cluster, and the plain scheme redis-py's
#: ``RedisCluster.from_url()`` takes for each.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

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
    primary the Sentinels name. On Redis Cluster, give a ``redis+cluster://``
    (or ``rediss+cluster://``) URL naming any node: redis-py's ``RedisCluster``
    finds the others. Nothing connects until the first call.
    """

    #: Prefix of every key, so several sites (or test runs) can share a database.
    key_prefix = "pigeonhole"
    #: Seconds to wait for a connection and for an answer; None waits for ever.
    socket_connect_timeout: float | None = 5.0
    socket_timeout: float | None = 5.0
    #: Recipients a send reads and reserves ids for at a time, and writes in
    #: one pipeline. The chunk is split by slot group, so the bigger it is, the
    #: more users each group's script carries: the script's own cost (its
    #: arguments, the content's copy, its bookkeeping) is paid per call.
    chunk_size = 20_000
    #: Users one fan-out script writes at most, so no script blocks Redis for long.
    script_size = 2000
    #: Chunks of a send in flight at once, each a pipeline on its own
    #: connection: Redis runs one while the sending process reads and packs
    #: the next, so a send costs about the larger of the two, not their sum.
    writers = 2
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
        scheme = urlsplit(url).scheme
        self.cluster = scheme in CLUSTER_SCHEMES
        if not self.sentinels and not self.cluster and scheme not in ("redis", "rediss", "unix"):
            raise ImproperlyConfigured(
                f"PIGEONHOLE['OPTIONS']['url'] = {_redacted(url)!r} is not a Redis URL; "
                "use redis://host:port/db, rediss:// for TLS, unix:///path/to/socket, or "
                "redis+cluster://host:port for a Redis Cluster."
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
        self._client: Any = None  # redis.Redis, or redis.cluster.RedisCluster
        self._scripts: dict[str, Any] = {}
        self._layout_checked = False
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

    def _connect(self) -> Any:
        """Return a new client: to ``url``, to a cluster, or to the primary the Sentinels name."""
        if self.cluster:
            scheme, _, rest = self.url.partition("://")
            return redis.cluster.RedisCluster.from_url(
                f"{CLUSTER_SCHEMES[scheme]}://{rest}", decode_responses=True, **self.pool_options
            )
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
    def get_client(self) -> Any:
        """
        Return the client (a ``RedisCluster`` on a cluster), building it and
        its pool on first use.

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

    def _ready(self) -> Any:
        """
        Return the client, once the keys under the prefix are known to be in this layout.

        The first call of a process stamps an empty store with ``LAYOUT``, and
        refuses a store written in another layout: reading it as this one
        would lose every inbox without a word.
        """
        client = self.get_client()
        if not self._layout_checked:
            stamp = client.get(self.keys.layout)
            if stamp is None and any(client.exists(key) for key in self.keys.legacy()):
                stamp = "1"
            if stamp is None:
                client.set(self.keys.layout, LAYOUT, nx=True)
                stamp = client.get(self.keys.layout)
            if stamp != LAYOUT:
                raise BackendUnavailable(
                    f"The Redis message store at {_redacted(self.url)} holds keys under the "
                    f"prefix {self.key_prefix!r} in layout {stamp}, not {LAYOUT}, the one this "
                    "version of pigeonhole reads, and will not read them as an empty store. "
                    "Give PIGEONHOLE['OPTIONS']['key_prefix'] a new prefix (the old inboxes "
                    "stay where they are), or delete the keys under the old one; see "
                    "'Key layout versions' in the backends documentation."
                )
            self._layout_checked = True
        return client

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
        except (redis.RedisError, RedisClusterException) as exc:
            reason = str(exc).rstrip(". ") or type(exc).__name__
            raise BackendUnavailable(
                f"The Redis message store at {_redacted(self.url)} refused a command: {reason}. "
                "Check the server's memory and role (a replica is read-only), and that no other "
                f"application writes keys under the prefix {self.key_prefix!r}."
            ) from exc

    def _run(self, name: str, group: int, args: Sequence[Any]) -> Any:
        """Run a script in one slot group: the group's base name is its one declared key."""
        self._ready()
        return self._scripts[name](keys=[self.keys.group(group)], args=[self.key_prefix, *args])

    def _each(self, name: str, calls: Iterable[tuple[int, Sequence[Any]]]) -> list[Any]:
        """
        Run a script once per ``(group, args)``, pipelined; return the answers in order.

        One round trip per server: redis-py's cluster pipeline sends each call
        to the node that holds its group. A server that has not seen the script
        yet (a fresh node, a restart) answers NOSCRIPT; it gets the script and
        those calls again, which it had not run.
        """
        client = self._ready()
        script = self._scripts[name]
        keyed = [(self.keys.group(group), args) for group, args in calls]

        def execute(todo: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for key, args in todo:
                pipe.evalsha(script.sha, 1, key, self.key_prefix, *args)
            answers: list[Any] = pipe.execute(raise_on_error=False)
            return answers

        results = execute(keyed)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            client.script_load(script.script)
            for i, result in zip(missing, execute([keyed[i] for i in missing]), strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    def _every(self, name: str, args: Sequence[Any]) -> list[Any]:
        """Run a script in every slot group with the same ``args``; return the answers."""
        return self._each(name, ((group, args) for group in range(GROUPS)))

    # Writing ----------------------------------------------------------------
    def _reserve(self, messages: int, entries: int) -> tuple[int, int]:
        """Take content and entry ids in one call; return the first of each (0 for none)."""
        now = ts(timezone.now())
        floors = [self._floor("message"), self._floor("entry")]
        self._ready()
        keys = [self.keys.counter("message"), self.keys.counter("entry")]
        script = self._scripts["reserve"]
        mid, first = script(keys=keys, args=[self.key_prefix, now, messages, entries, *floors])
        if messages:
            self._saw("message", int(mid) + messages - 1)
        if entries:
            self._saw("entry", int(first) + entries - 1)
        return int(mid or 0), int(first or 0)

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
        Store the content, then give recipients entries a chunk at a time.

        Each chunk's ids are reserved just before it is written, so the
        recipients are read as the send goes, never all held in memory.
        """
        with self._errors():
            mid, _ = self._reserve(1, 0)
        chunks = (
            (self._reserve(0, len(chunk))[1], chunk)
            for chunk in recipients.distinct().iter_ids(self.chunk_size)
        )
        count = self._write_send(message, mid, chunks)
        return SentMessage(id=mid, recipient_count=count)

    def _reserve_send(
        self, message: NewMessage, recipients: Recipients
    ) -> tuple[SentMessage, Callable[[], int]]:
        """
        Read the recipients and reserve every id now; write them on commit.

        The ids (one ``INCRBY`` for all of them) are the ones the entries will
        have, so they sort after every entry written before this call.
        """
        message = _dated(message)
        ids = [pk for chunk in recipients.distinct().iter_ids(self.chunk_size) for pk in chunk]
        if message.thread is not None:
            # The count reported now leaves out who muted the thread; the
            # fan-out script skips them again when it writes.
            ids = list(self.unmuted(Recipients(ids=ids), message.thread).ids)
        with self._errors():
            mid, first = self._reserve(1, len(ids))
        # Sorted by group, each group's entries take consecutive ids: few scripts.
        ids.sort(key=group_of)
        chunks = [
            (first + start, ids[start : start + self.chunk_size])
            for start in range(0, len(ids), self.chunk_size)
        ]
        sent = SentMessage(id=mid, recipient_count=len(ids))
        return sent, lambda: self._write_send(message, mid, chunks)

    def _write_send(
        self, message: NewMessage, mid: int, chunks: Iterable[tuple[int, Sequence[Any]]]
    ) -> int:
        """
        Write a send's ``(first id, user ids)`` chunks; return how many entries were written.

        Each chunk is split by slot group, each part taking consecutive ids
        from the chunk's first, and written by one script per group, all in
        one pipeline; each group's script writes the group's copy of the
        content with its first entries. A send that reaches nobody stores its
        content in the group its id falls in, for purge to collect.

        Each script is atomic. If the send fails part way (the recipients query
        raises, Redis goes away), the entries written so far and the copies
        are taken back, as far as Redis still answers; after a timeout they are
        left for ``purge()``, so the caller waits one socket timeout, not two.
        """
        created = message.created or timezone.now()
        expires = "" if message.expires is None else ts(message.expires)
        content = content_fields(message, created)
        fields = [message.thread or "", len(content) // 2, *content]
        written: list[tuple[int, int, int]] = []
        count = 0
        try:
            with self._errors(), ThreadPoolExecutor(self.writers) as writer:
                # Up to ``writers`` chunks in flight: Redis runs one while this
                # thread reads the next from the database and a writer packs it.
                # A send of one chunk (short of ``chunk_size``) starts no thread.
                flying: deque[Future[list[Any]]] = deque()
                for first, chunk in chunks:
                    parts = _by_group(first, chunk, self.script_size)
                    # The ids are reserved: a failure knows which to take back.
                    written += [(group, start, len(users)) for group, start, users in parts]
                    now = ts(timezone.now())
                    args = [now, mid, ts(created), expires]
                    calls = [
                        (g, [*args, start, *fields, _json_array(users)])
                        for g, start, users in parts
                    ]
                    if not flying and len(chunk) < self.chunk_size:
                        count += sum(self._each("fanout", calls))
                        continue
                    if len(flying) >= self.writers:
                        count += sum(flying.popleft().result())
                    flying.append(writer.submit(self._each, "fanout", calls))
                while flying:
                    count += sum(flying.popleft().result())
                groups = {group for group, _, _ in written}
                if not groups:
                    groups = {group_of(mid)}
                    self._run("create", group_of(mid), [ts(timezone.now()), mid, *content])
                self._each("finish", ((group, [ts(timezone.now()), mid]) for group in groups))
        except BaseException as exc:
            if not isinstance(exc.__cause__, redis.TimeoutError):
                # Redis that stopped answering would make the caller wait a second
                # socket timeout for nothing; purge takes the send back instead.
                self._withdraw(mid, written)
            raise
        return count

    def _withdraw(self, mid: Any, written: Sequence[tuple[int, int, int]]) -> None:
        """Take back a failed send, as far as Redis still answers."""
        # The original error is the one worth raising. The copies stay
        # flagged as sending, and once send_timeout has passed, purge takes
        # back the entries the send reached and the copies.
        with suppress(redis.RedisError, RedisClusterException):
            self._take_back(mid, written)

    def _take_back(self, mid: Any, written: Sequence[tuple[int, int, int]]) -> None:
        """Remove the entries of a send's ``(group, first id, count)`` ranges, then its copies."""
        now = ts(timezone.now())
        self._each("withdraw", ((group, [now, mid, first, size]) for group, first, size in written))
        groups = {group for group, _, _ in written} | {group_of(mid)}
        self._each("drop_message", ((group, [now, mid]) for group in groups))

    def _purge_stale_sends(self, oldest_live_send: str) -> set[str]:
        """
        Take back every send cut off mid-way (Redis went away, the process died).

        Each group's copy of its content names, in ``ranges``, the entry ids
        the send reserved in that group, so the entries it reached go too:
        none is left half-delivered. Return the contents whose copies went.
        """
        client = self._ready()
        stale: set[str] = set()
        for group in range(GROUPS):
            key = self.keys.index(group, "sending")
            for mid in self._members(key, "-inf", f"({oldest_live_send}"):
                ranges = str(client.hget(self.keys.content(group, mid), "ranges") or "")
                written = [
                    (group, int(first), int(size))
                    for first, _, size in (item.partition(":") for item in ranges.split(","))
                    if size
                ]
                now = ts(timezone.now())
                self._each("withdraw", ((group, [now, mid, f, n]) for _, f, n in written))
                self._run("drop_message", group, [now, mid])
                stale.add(mid)
        return stale

    def _add(self, message: NewMessage, user_id: Any) -> StoredMessage:
        with self._errors():
            mid, entry_id = self._reserve(1, 1)
        return self._write_add(message, user_id, mid, entry_id)

    def _reserve_add(
        self, message: NewMessage, user_id: Any
    ) -> tuple[StoredMessage, Callable[[], StoredMessage]]:
        message = _dated(message)
        with self._errors():
            mid, entry_id = self._reserve(1, 1)
        stored = self._added(message, user_id, mid, entry_id)
        return stored, lambda: self._write_add(message, user_id, mid, entry_id)

    def _write_add(
        self, message: NewMessage, user_id: Any, mid: int, entry_id: int
    ) -> StoredMessage:
        created = message.created or timezone.now()
        with self._errors():
            _, _, noted = self._run(
                "add",
                group_of(user_id),
                [
                    ts(timezone.now()),
                    ts(created),
                    "" if message.expires is None else ts(message.expires),
                    str(user_id),
                    mid,
                    entry_id,
                    *content_fields(message, created),
                ],
            )
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
        limit = query.limit
        cursor = "+inf" if query.after is None else f"({int(query.after)}"
        args = self._list_args(user_id, query, now)
        rows: list[Any] = []
        with self._errors():
            while len(rows) < limit and cursor:
                args[3], args[4] = cursor, limit - len(rows)
                cursor, found = self._run("list", group_of(user_id), args)
                rows += json.loads(found)
        return [decode_entry(user_id, row) for row in rows]

    def _list_args(self, user_id: Any, query: InboxQuery, now: datetime) -> list[Any]:
        """
        Return the listing script's arguments for a first round.

        The cursor and the number of rows wanted (the fourth and fifth) are
        those of a first page; ``_scan()`` replaces them for each round.
        """
        return [
            ts(now),
            str(user_id),
            query.state,
            "+inf" if query.after is None else f"({int(query.after)}",
            query.limit,
            self.scan_batch,
            "" if query.since is None else ts(query.since),
            "" if query.before is None else ts(query.before),
            query.tag or "",
            query.reason or "",
            self._noted_ttl(query),
            *(str(int(level)) for level in query.levels or ()),
        ]

    def snapshots(
        self, user_ids: Sequence[Any], limit: int
    ) -> list[tuple[list[StoredMessage], int]]:
        """
        Read every user's newest entries and unread count in two pipelined round trips.

        A reconnect storm reads dozens of users at once; one by one, each user
        cost two round trips. A user whose page the first round could not fill
        (more than ``scan_batch`` expired entries on top) is read on as
        ``list()`` reads.
        """
        if not user_ids:
            return []
        now = timezone.now()
        query = InboxQuery("all", limit=limit)
        with self._errors():
            pages = self._each(
                "list", ((group_of(pk), self._list_args(pk, query, now)) for pk in user_ids)
            )
            counts = self._each("count", ((group_of(pk), [ts(now), str(pk)]) for pk in user_ids))
        found = []
        for pk, (cursor, rows), count in zip(user_ids, pages, counts, strict=True):
            page = json.loads(rows)
            entries = (
                self._scan(pk, query, now)
                if len(page) < limit and cursor
                else [decode_entry(pk, row) for row in page]
            )
            found.append((entries, int(count)))
        return found

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
            row = self._run(
                "get", group_of(user_id), [ts(timezone.now()), str(user_id), str(entry_id)]
            )
        return decode_entry(user_id, row) if row else None

    def _count(self, user_id: Any) -> int:
        """
        Return the unread count: the unread set's size less its expired members.

        Both are O(log n), so a user with thousands of unread entries costs no
        more than one with three; one script reads both at the same instant.
        """
        with self._errors():
            return int(self._run("count", group_of(user_id), [ts(timezone.now()), str(user_id)]))

    def _counts(self, user_id: Any) -> dict[str, int]:
        """
        Count the three tabs in one script.

        Entries carry their expiry, so "all" (the ``unread`` and ``read`` sets)
        and ``archived`` look at each of the user's entries: fine for a page a
        user opens, which is all this is for.
        """
        with self._errors():
            counts = self._run("counts", group_of(user_id), [ts(timezone.now()), str(user_id)])
        return dict(zip(("unread", "all", "archived", "saved"), map(int, counts), strict=True))

    def state(self, user_id: Any) -> InboxState:
        """
        Return the inbox in brief with one script.

        Every script that changes a user's entries bumps that user's change
        counter, which makes the version, except a send's, which only adds
        entries: the inbox's size (``unread`` and ``read``) counts those. The
        highest unread level takes a look at each unread entry, which stays
        cheap as long as people read.
        """
        with self._errors():
            unread, top, changes, when, last, last_archived, expired, unseen, size = self._run(
                "state", group_of(user_id), [ts(timezone.now()), str(user_id)]
            )
        key = f"{changes}|{size}|{last}|{last_archived}|{expired}"
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
            threads: set[str] = self._ready().smembers(self.keys.user(user_id, "muted"))
        return sorted(threads)

    def unmuted(self, recipients: Recipients, thread: str) -> Recipients:
        """
        Ask Redis about a chunk of recipients at a time: one script per slot group, pipelined.

        Each script answers the few of its users who muted the thread. Asking
        with one ``SISMEMBER`` per recipient cost the process more than the
        fan-out did (a command packed and parsed per user).
        """
        kept: list[Any] = []
        with self._errors():
            for chunk in recipients.distinct().iter_ids(self.chunk_size):
                now = ts(timezone.now())
                calls = [
                    (group, [now, thread, _json_array(users)])
                    for group, _, users in _by_group(0, chunk, self.script_size)
                ]
                muted = {uid for answer in self._each("muted", calls) for uid in answer}
                kept += [pk for pk in chunk if str(pk) not in muted] if muted else chunk
        return Recipients(ids=kept)

    def _mute(self, user_id: Any, thread: str, muted: bool) -> bool:
        args = [ts(timezone.now()), str(user_id), thread, "1" if muted else ""]
        with self._errors():
            return bool(self._run("mute", group_of(user_id), args))

    def _unseen_count(self, user_id: Any) -> int:
        with self._errors():
            return int(self._run("unseen", group_of(user_id), [ts(timezone.now()), str(user_id)]))

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
        now, rows, group = ts(timezone.now()), [], group_of(user_id)
        with self._errors():
            ids = self._run("export", group, [now, str(user_id), thread])
            for start in range(0, len(ids), self.scan_batch):
                chunk = ids[start : start + self.scan_batch]
                rows += self._run("export", group, [now, str(user_id), thread, *chunk])
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
            status, result = self._run("change", group_of(user_id), [*args, *given])
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
                highest = self._ready().get(self.keys.counter("entry")) or "0"
            elif before is not None:
                highest = str(int(before))
            else:
                highest = self._ready().get(self.keys.counter("entry")) or "0"
            cursor = "-inf"
            while True:
                scanned, last, ids = self._run(
                    "mark_all",
                    group_of(user_id),
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
    def _drain(self, name: str, args: Sequence[Any]) -> list[list[Any]]:
        """
        Run a batch script in every group until each says it scanned less than a batch.

        Each round is one pipeline across the groups still busy; return every answer.
        """
        busy, answers = list(range(GROUPS)), []
        while busy:
            found = self._each(name, ((group, args) for group in busy))
            answers += found
            busy = [
                g for g, answer in zip(busy, found, strict=True) if answer[0] >= self.scan_batch
            ]
        return answers

    def _purge(self, purge: Purge) -> dict[str, int]:
        """
        Remove expired entries, read ones older than ``read_before``, then
        contents left without entries, group by group.

        Each script removes at most ``scan_batch`` entries, so purging millions
        never blocks Redis for long. A content counts once, when its last
        group's copy goes. A dry run reads what a purge would remove and
        removes nothing.
        """
        expired, read_before = purge.expired, purge.read_before
        now = ts(timezone.now())
        counts = {"expired": 0, "read": 0, "messages": 0}
        with self._errors():
            if purge.dry_run:
                return self._dry_run(now, expired, read_before)
            if expired:
                for _, removed in self._drain("purge_expired", [now, self.scan_batch]):
                    counts["expired"] += removed
            if read_before is not None:
                args = [now, ts(read_before), self.scan_batch, "1" if expired else ""]
                for _, read, gone in self._drain("purge_read", args):
                    counts["read"] += read
                    counts["expired"] += gone
            oldest_live_send = repr(float(now) - self.send_timeout)
            dropped = self._purge_stale_sends(oldest_live_send)
            client = self._ready()
            batches = []
            for group in range(GROUPS):
                orphans = list(client.sscan_iter(self.keys.index(group, "orphans"), count=1000))
                for start in range(0, len(orphans), self.scan_batch):
                    batches.append((group, orphans[start : start + self.scan_batch]))
            for removed in self._each(
                "purge_orphans", ((g, [now, oldest_live_send, *mids]) for g, mids in batches)
            ):
                dropped.update(removed)
            counts["messages"] = len(dropped - self._copied(dropped))
        return counts

    def _copied(self, mids: Iterable[str]) -> set[str]:
        """Return those of the contents that some group still holds a copy of."""
        mids = list(mids)
        pipe = self._ready().pipeline(transaction=False)
        for mid in mids:
            for group in range(GROUPS):
                pipe.exists(self.keys.content(group, mid))
        found = pipe.execute()
        return {mid for i, mid in enumerate(mids) if any(found[i * GROUPS : (i + 1) * GROUPS])}

    def _copies(self, mid: Any) -> list[int]:
        """Return the groups holding a copy of the content: those with some of its entries."""
        pipe = self._ready().pipeline(transaction=False)
        for group in range(GROUPS):
            pipe.exists(self.keys.content(group, mid))
        return [group for group, found in enumerate(pipe.execute()) if found]

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
        its send reserved in each group (kept in the group's copy as ``ranges``),
        merged in id order.
        """
        start = "0" if after is None else str(int(after))
        with self._errors():
            groups = self._copies(message_id)
            # Each group's batch is a share of the limit; a group whose batch
            # runs out before the merge is done reads on from its cursor.
            want = max(16, limit // max(len(groups), 1) + 1)

            def fetch(todo: Sequence[tuple[int, str]]) -> list[tuple[str, list[Any]]]:
                now = ts(timezone.now())
                calls = [(g, [now, message_id, c, want, self.scan_batch]) for g, c in todo]
                return [(c, rows) for c, rows in self._each("unmailed_for_message", calls)]

            rows = _merge(fetch, [(g, start) for g in groups], lambda row: int(row[0]), limit)
        return [self._stored_any(row) for row in rows]

    def unmailed_due(
        self,
        created_before: datetime,
        *,
        limit: int = 500,
        after: StoredMessage | None = None,
    ) -> list[StoredMessage]:
        """
        Read the groups' ``unmailed`` indexes (unread entries not emailed, by
        creation time), merged oldest first, then the entries of those members.

        ``after`` is one cursor for every group, ``(creation time, id)`` in
        the order of a sorted set. A page is chosen from the members alone
        (cheap), then only its entries are read; members whose entries turn
        out expired are behind the next round's cursor, so they cannot shift
        a later page.
        """
        cutoff = ts(created_before)
        cursor = "-"
        if after is not None:
            if after.created is None:
                raise ValueError("after= takes an entry the store returned: it has a creation time")
            cursor = f"{ts(after.created)} {after.id}"
        rows: list[Any] = []
        with self._errors():
            more = True
            while more and len(rows) < limit:
                want = limit - len(rows)
                page = self._due_members(cutoff, cursor, want)
                if not page:
                    break
                more = len(page) == want
                by_group: dict[int, list[str]] = defaultdict(list)
                for group, _, member in page:
                    by_group[group].append(member)
                now = ts(timezone.now())
                found = self._each(
                    "unmailed_due", ((g, [now, *ids]) for g, ids in by_group.items())
                )
                order = {member: i for i, (_, _, member) in enumerate(page)}
                rows += sorted((row for part in found for row in part), key=lambda r: order[r[0]])
                _, score, member = page[-1]
                cursor = f"{score} {member}"
        return [self._stored_any(row) for row in rows]

    def _due_members(self, cutoff: str, cursor: str, want: int) -> list[tuple[int, str, str]]:
        """
        Return the first ``want`` members of the groups' ``unmailed`` indexes
        after ``cursor``, merged, as ``(group, score, member)``.

        A group starts with a share of ``want``; one asked again (its members
        came first, as those of one send in one group do) gets twice as many
        each time, so draining a single group costs a few round trips.
        """
        asked = dict.fromkeys(range(GROUPS), max(16, want // GROUPS + 1))

        def fetch(todo: Sequence[tuple[int, str]]) -> list[tuple[str, list[Any]]]:
            now = ts(timezone.now())
            calls = [(g, [now, cutoff, c, min(asked[g], want)]) for g, c in todo]
            answers: list[tuple[str, list[Any]]] = []
            for (group, _), flat in zip(todo, self._each("unmailed_after", calls), strict=True):
                found = [(group, flat[i + 1], flat[i]) for i in range(0, len(flat), 2)]
                more = len(found) == min(asked[group], want)
                answers.append((f"{found[-1][1]} {found[-1][2]}" if more else "", found))
                asked[group] *= 2
            return answers

        return _merge(
            fetch,
            [(group, cursor) for group in range(GROUPS)],
            lambda item: (float(item[1]), item[2]),
            want,
        )

    def claim_email(self, ids: Sequence[Any], when: datetime) -> list[Any]:
        """Claim in every group: each entry is in one, and the others find nothing."""
        if not ids:
            return []
        with self._errors():
            found = self._every("claim_email", [ts(when), *map(str, ids)])
        claimed = {pk for part in found for pk in part}
        return [int(pk) for pk in map(str, ids) if pk in claimed]

    def release_email(self, ids: Sequence[Any], when: datetime) -> list[Any]:
        if not ids:
            return []
        now = ts(timezone.now())
        with self._errors():
            found = self._every("release_email", [now, ts(when), *map(str, ids)])
        released = {pk for part in found for pk in part}
        return [int(pk) for pk in map(str, ids) if pk in released]

    def forget_user(self, user_id: Any) -> int:
        """Delete the user's entries one bounded script at a time, as purge() does."""
        removed: int = 0
        now = ts(timezone.now())
        with self._errors():
            while True:
                scanned: int
                gone: int
                scanned, gone = self._run(
                    "forget_user", group_of(user_id), [now, str(user_id), self.scan_batch]
                )
                removed += gone
                if scanned == 0:
                    return removed

    def _members(self, key: str, low: str, high: str) -> list[str]:
        """Return a sorted set's members scored from ``low`` to ``high``, in batches."""
        found: list[Any] = []  # redis-py types its replies loosely
        client, offset = self._ready(), 0
        while batch := client.zrangebyscore(key, low, high, start=offset, num=self.scan_batch):
            found += batch
            offset += len(batch)
        return found

    def _dry_run(self, now: str, expired: bool, read_before: datetime | None) -> dict[str, int]:
        """Count, group by group, what purge() would remove; change nothing."""
        counts = {"expired": 0, "read": 0}
        oldest_live_send = float(now) - self.send_timeout
        dropped: dict[str, set[int]] = defaultdict(set)
        for group in range(GROUPS):
            doomed_expired, doomed_read, gone = self._dry_run_group(
                group, now, expired, read_before, oldest_live_send
            )
            counts["expired"] += doomed_expired
            counts["read"] += doomed_read
            for mid in gone:
                dropped[mid].add(group)
        # A content goes when every group holding a copy loses it.
        messages = sum(1 for mid, groups in dropped.items() if set(self._copies(mid)) <= groups)
        return {**counts, "messages": messages}

    def _dry_run_group(
        self,
        group: int,
        now: str,
        expired: bool,
        read_before: datetime | None,
        oldest_live_send: float,
    ) -> tuple[int, int, set[str]]:
        """Return what purge() would remove in one group: expired and read entries, copies."""
        client = self._ready()
        doomed_expired = (
            set(self._members(self.keys.index(group, "expiring"), "-inf", now))
            if expired
            else set()
        )
        doomed_read: set[str] = set()
        if read_before is not None:
            doomed_read = set(
                self._members(self.keys.index(group, "read"), "-inf", f"({ts(read_before)}")
            )
            doomed_read -= doomed_expired
        doomed = sorted(doomed_expired | doomed_read)
        # Copies that would lose their last entry, and those that have none already.
        losing: Counter[str] = Counter()
        for start in range(0, len(doomed), self.scan_batch):
            chunk = doomed[start : start + self.scan_batch]
            pipe = client.pipeline(transaction=False)
            for entry_id in chunk:
                pipe.hmget(self.keys.entry(group, entry_id), "m", "u")
            rows = pipe.execute()
            losing.update(mid for mid, _ in rows if mid is not None)
            losing.update(self._history_contents(group, list(zip(chunk, rows, strict=True))))
        stale = set(
            self._members(self.keys.index(group, "sending"), "-inf", f"({oldest_live_send!r}")
        )
        orphans = client.sscan_iter(self.keys.index(group, "orphans"), count=self.scan_batch)
        candidates = [mid for mid in dict.fromkeys([*losing, *orphans]) if mid not in stale]
        gone = set(stale)
        for start in range(0, len(candidates), self.scan_batch):
            chunk = candidates[start : start + self.scan_batch]
            pipe = client.pipeline(transaction=False)
            for mid in chunk:
                pipe.hmget(self.keys.content(group, mid), "refs", "sending")
            for mid, (refs, sending) in zip(chunk, pipe.execute(), strict=True):
                if refs is None or int(refs) > losing[mid]:
                    continue
                if sending is None or float(sending) < oldest_live_send:
                    gone.add(mid)
        return len(doomed_expired), len(doomed_read), gone

    def _history_contents(self, group: int, rows: Sequence[tuple[str, Sequence[Any]]]) -> list[str]:
        """Return the contents of the folded entries that go with ``(row id, (content, user))``."""
        client = self._ready()
        pipe = client.pipeline(transaction=False)
        for _, (mid, _user) in rows:
            pipe.hget(self.keys.content(group, mid or ""), "thread")
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
            pipe.hget(self.keys.entry(group, old), "m")
        return [mid for mid in pipe.execute() if mid is not None]

    # Live delivery ----------------------------------------------------------
    #: Users per script: a broadcast to a process's 10,000 streams is one round trip.
    deliveries_chunk = 10_000

    def _by_user_group(self, items: Iterable[tuple[Any, list[str]]]) -> list[tuple[int, list[str]]]:
        """
        Gather per-user arguments ``(user id, args)`` by slot group, in chunks
        of ``deliveries_chunk`` users: one script call each.
        """
        groups: dict[int, list[list[str]]] = defaultdict(list)
        for user_id, args in items:
            groups[group_of(user_id)].append(args)
        return [
            (group, [arg for args in users[start : start + self.deliveries_chunk] for arg in args])
            for group, users in groups.items()
            for start in range(0, len(users), self.deliveries_chunk)
        ]

    def deliveries(self, message_id: Any, user_ids: Sequence[Any]) -> list[tuple[Any, int]]:
        """Read the users' entries of one message and their counts: one script per group."""
        calls = self._by_user_group((user_id, [str(user_id)]) for user_id in user_ids)
        found: list[tuple[Any, int]] = []
        with self._errors():
            now = ts(timezone.now())
            answers = self._each(
                "deliveries", ((g, [now, str(message_id), *users]) for g, users in calls)
            )
        for rows, content in answers:
            for entry_id, entry, unread in rows:
                found.append((self._stored_any([entry_id, entry, content]), int(unread)))
        return found

    def replaced(self, entries: Sequence[StoredMessage]) -> dict[Any, Any]:
        """Read the rows the entries folded, from their thread histories: one script per group."""
        users = {entry.id: entry.user_id for entry in entries}
        calls = self._by_user_group(
            (e.user_id, [str(e.user_id), e.thread or "", str(e.id)]) for e in entries
        )
        found: dict[Any, Any] = {}
        with self._errors():
            now = ts(timezone.now())
            answers = self._each("replaced", ((g, [now, *args]) for g, args in calls))
        for rows in answers:
            for entry_id, *row in rows:
                found[int(entry_id)] = decode_entry(users[int(entry_id)], row)
        return found


def _merge(
    fetch: Callable[[Sequence[tuple[int, str]]], list[tuple[str, list[Any]]]],
    cursors: Sequence[tuple[int, str]],
    key: Callable[[Any], Any],
    limit: int,
) -> list[Any]:
    """
    Merge the groups' sorted batches into the first ``limit`` rows by ``key``.

    ``fetch([(group, cursor), ...])`` returns each group's next ``(cursor,
    rows)``, rows in ``key`` order, cursor ``""`` once the group has no more.
    A row is taken only while every group that may still hold a smaller one
    has a batch in hand, so the answer is exact however the groups interleave.
    """
    pending: dict[int, tuple[str, list[Any]]] = {group: (cursor, []) for group, cursor in cursors}
    merged: list[Any] = []
    while len(merged) < limit and pending:
        empty = [(group, state[0]) for group, state in pending.items() if not state[1]]
        for (group, _), (cursor, rows) in zip(empty, fetch(empty) if empty else [], strict=True):
            pending[group] = (cursor, list(rows))
        for group in [g for g, (cursor, rows) in pending.items() if not cursor and not rows]:
            del pending[group]
        while len(merged) < limit and pending and all(rows for _, rows in pending.values()):
            group = min(pending, key=lambda g: key(pending[g][1][0]))
            merged.append(pending[group][1].pop(0))
            if not pending[group][1] and not pending[group][0]:
                del pending[group]
    return merged
