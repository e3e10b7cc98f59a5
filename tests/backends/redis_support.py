"""
Helpers for testing against real Redis servers: never a mock.

``redis_url()`` gives the server the run uses (``PIGEONHOLE_TEST_REDIS_URL``),
skipping without one, and failing under CI, where a skipped backend would be a
green run that tested less than it claims. ``RedisServer`` starts a private
``redis-server`` on a spare port, for tests that stop it mid-way.
``check_indexes()`` reads every key a backend wrote and checks that its indexes
say what its entries say.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

__all__ = [
    "RedisSentinel",
    "RedisServer",
    "backends_made",
    "check_indexes",
    "delete_keys",
    "redis_url",
    "unique_prefix",
]


def redis_url() -> str:
    """Return the test server's URL; skip without one, or fail under CI."""
    url = os.environ.get("PIGEONHOLE_TEST_REDIS_URL")
    if not url:
        reason = "PIGEONHOLE_TEST_REDIS_URL is not set (dev.py test sets it when Redis answers)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI a skipped backend is a failure.")
        pytest.skip(reason)
    return url


def unique_prefix(label: str = "test") -> str:
    return f"pigeonhole-{label}-{uuid.uuid4().hex[:12]}"


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def keys_under(client: redis.Redis, prefix: str) -> list[str]:
    return list(client.scan_iter(match=f"{_glob_escape(prefix)}:*", count=1000))


def backends_made(url: str, label: str = "test") -> Iterator[Callable[..., Any]]:
    """
    Yield a function that builds ``RedisBackend(url=url)`` with a fresh key
    prefix; once resumed, delete each backend's keys and close it. A fixture
    ``yield from``-s it.
    """
    from pigeonhole.backends.redis import RedisBackend

    made = []

    def make(**options: Any) -> Any:
        options.setdefault("key_prefix", unique_prefix(label))
        backend = RedisBackend(url=url, **options)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        client = backend.get_client()
        keys = keys_under(client, backend.key_prefix)
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        backend.close()


def delete_keys(url: str, prefix: str) -> int:
    """Delete every key under ``prefix``; return how many there were."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        keys = keys_under(client, prefix)
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        return len(keys)
    finally:
        client.close()


def _kind(rest: str) -> str:
    """
    Return what a key (``rest``, its name less the prefix) holds: ``e``, ``m``,
    ``u`` (any key of a user), an index's name, or ``ids`` for the ``{ids}`` keys.
    """
    parts = rest.split(":")
    if parts[0] == "{ids}":
        return "ids" if parts[1] != "layout" else "layout"
    return parts[1]


def _hashless_entries(backend, keys) -> list[tuple[str, str, dict[str, str]]]:
    """
    Return the entries a send wrote without a hash, as ``(group, id, fields)``.

    Each part in a group's ``ranges`` must have its copy of the content and
    its list of users (and each list its part); an id of a part is an entry
    while it sits in its user's ``unread`` set and has no hash. Its fields
    name its part (``part``), which stands for it in the digest queue.
    """
    client = backend.get_client()
    found = []
    lists = {key for key in keys if _kind(key[len(backend.key_prefix) + 1 :]) == "ru"}
    for key in keys:
        if not key.endswith(":ranges"):
            continue
        group = key[: key.index("}") + 1]
        for member, score in client.zrange(key, 0, -1, withscores=True):
            first, count, mid = member.split(":")
            assert float(first) == score, f"part {member} scored {score}"
            content = client.hgetall(f"{group}:m:{mid}")
            assert content, f"part {member} outlived its copy of the content"
            users = client.lrange(f"{group}:ru:{first}", 0, -1)
            lists.discard(f"{group}:ru:{first}")
            assert len(users) == int(count), f"part {member} lists {len(users)} users"
            for offset, uid in enumerate(users):
                entry_id = str(int(first) + offset)
                if client.exists(f"{group}:e:{entry_id}"):
                    continue
                if client.zscore(backend.keys.user(uid, "unread"), entry_id) is not None:
                    fields = {
                        "u": uid,
                        "m": mid,
                        "c": content["created"],
                        "part": f"{first}:{count}",
                    }
                    found.append((group, entry_id, fields))
    assert not lists, f"lists of users without their part: {sorted(lists)}"
    return found


def check_indexes(backend) -> dict[str, int]:
    """
    Check that every index agrees with the entry hashes; return key counts by kind.

    Each entry must sit in exactly the per-user sets its state calls for
    (``seen`` and ``saved`` included; an entry folded into a newer row of
    its thread in none but the thread's history, whose row ``threads``
    names), its group's read and expiring sets must hold exactly the read and
    expiring entries that are not saved, the ``unmailed`` set exactly the
    unread, unarchived entries not yet emailed that have a hash, the
    ``unmailed_parts`` set the parts of the others (and no part the group
    has not), the ``sending`` set exactly
    the copies of sends not finished, and each copy's ``refs`` must equal its
    number of entries in the group. Every key but the ``{ids}`` ones must be
    in a slot group, and the group of its user.
    """
    client = backend.get_client()
    prefix = backend.key_prefix
    keys = keys_under(client, prefix)
    kinds = Counter(_kind(key[len(prefix) + 1 :]) for key in keys)
    expected: dict[str, dict[str, float]] = defaultdict(dict)

    def base(key: str) -> str:
        return key[: key.index("}") + 1]

    queued: dict[str, dict[str, float]] = defaultdict(dict)
    refs: Counter[str] = Counter()
    rows: dict[str, dict[str, str]] = defaultdict(dict)
    entries = []
    for key in keys:
        rest = key[len(prefix) + 1 :].split(":")
        if rest[0] != "{ids}":
            assert rest[0].startswith("{g") and rest[0].endswith("}"), key
        if rest[0] == "{ids}" or rest[1] != "e":
            continue
        entries.append((base(key), rest[2], client.hgetall(key)))
    entries += _hashless_entries(backend, keys)
    for group, entry_id, entry in entries:
        assert backend.keys.of(entry["u"]) == group, f"entry {entry_id} is not in its user's group"
        refs[f"{group}:m:{entry['m']}"] += 1
        thread = client.hget(f"{group}:m:{entry['m']}", "thread")
        if thread is not None:
            # Every entry of a thread sits in its user's history; a row is the thread's row.
            expected[backend.keys.history(entry["u"], thread)][entry_id] = float(entry_id)
            if not entry.get("o"):
                rows[backend.keys.user(entry["u"], "threads")][thread] = entry_id
        if entry.get("o"):
            continue  # folded into a newer row of its thread: in no other index
        uid, read, archived, expires = entry["u"], entry.get("r"), entry.get("a"), entry.get("x")
        saved = entry.get("s")
        score = float(entry_id)

        def user_key(name: str) -> str:
            return backend.keys.user(uid, name)  # noqa: B023  (used at once)

        # Each entry sits in exactly one of its user's state sets: "all" is unread and read.
        if archived:
            expected[user_key("archived")][entry_id] = score
        elif read:
            expected[user_key("read")][entry_id] = score
        else:
            expected[user_key("unread")][entry_id] = score
        if not archived and not read:
            if entry.get("n"):
                expected[user_key("seen")][entry_id] = score
            if expires:
                expected[user_key("unread_exp")][entry_id] = float(expires)
            if entry.get("part"):
                queued[f"{group}:unmailed_parts"][entry["part"]] = float(entry["c"])
            elif not entry.get("e"):
                expected[f"{group}:unmailed"][entry_id] = float(entry["c"])
        if saved:
            expected[user_key("saved")][entry_id] = score
        # Purge walks the read and expiring indexes: a saved entry stays out of them.
        if read and not saved:
            expected[f"{group}:read"][entry_id] = float(read)
        if expires and not saved:
            expected[f"{group}:expiring"][entry_id] = float(expires)
    for key in keys:
        rest = key[len(prefix) + 1 :].split(":")
        if rest[1] == "m" and (started := client.hget(key, "sending")) is not None:
            expected[f"{base(key)}:sending"][rest[2]] = float(started)
    actual: dict[str, dict[str, float]] = {}
    for key in keys:
        if key.endswith(":unmailed_parts"):
            # A part may stay queued once none of its entries waits: the digests drop it.
            parts = dict(client.zrange(key, 0, -1, withscores=True))
            assert queued[key].items() <= parts.items(), f"{key} lacks a waiting part"
            known = {m.rsplit(":", 1)[0] for m in client.zrange(f"{base(key)}:ranges", 0, -1)}
            assert set(parts) <= known, f"{key} queues a part {base(key)} has not"
            queued.pop(key)
        elif client.type(key) == "zset" and not key.endswith(":ranges"):
            actual[key] = dict(client.zrange(key, 0, -1, withscores=True))
    assert not any(queued.values()), f"parts with waiting entries not queued: {dict(queued)}"
    assert actual == {name: members for name, members in expected.items() if members}
    assert {key: client.hgetall(key) for key in keys if key.endswith(":threads")} == rows
    for key in keys:
        rest = key[len(prefix) + 1 :].split(":")
        if rest[1] == "m":
            mid = rest[2]
            stored = int(client.hget(key, "refs"))
            assert stored == refs[key], f"copy {key} has refs={stored}, {refs[key]} entries"
            if stored == 0:
                orphans = client.smembers(f"{base(key)}:orphans")
                assert mid in orphans, f"copy {key} has no entries but is not an orphan"
    return dict(kinds)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """
    A throwaway ``redis-server`` on a spare port.

    Without persistence by default; given ``data_dir``, it writes every
    command to an append-only file there before answering, so a killed
    server comes back with everything it acknowledged.
    """

    def __init__(self, port: int | None = None, data_dir=None, args=()) -> None:
        self.executable = shutil.which("redis-server")
        if self.executable is None:
            pytest.skip("redis-server is not installed")
        self.port = port or free_port()
        self.data_dir = data_dir
        self.args = list(args)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *(
                    ["--appendonly", "no"]
                    if self.data_dir is None
                    else [
                        "--appendonly",
                        "yes",
                        "--appendfsync",
                        "always",
                        "--dir",
                        str(self.data_dir),
                    ]
                ),
                "--daemonize",
                "no",
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_until(self, lambda client: client.ping())
        return self

    def stop(self) -> None:
        """Kill the server, as a crash would: no shutdown, no save."""
        _kill(self)


class RedisSentinel:
    """A throwaway Redis Sentinel watching the primary ``server`` as ``mymaster``."""

    service_name = "mymaster"

    def __init__(self, server: RedisServer, directory) -> None:
        self.server = server
        self.port = free_port()
        self.config = Path(directory) / f"sentinel-{self.port}.conf"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisSentinel:
        # Sentinel rewrites its configuration file, so it gets one of its own.
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\n"
            f"sentinel monitor {self.service_name} 127.0.0.1 {self.server.port} 1\n"
        )
        self.process = subprocess.Popen(
            [self.server.executable, str(self.config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_until(self, lambda client: client.sentinel_get_master_addr_by_name(self.service_name))
        return self

    def stop(self) -> None:
        _kill(self)


def _wait_until(server, ready) -> None:
    """Poll ``ready(client)`` on the server's port until it answers truly; give up after 10 s."""
    client = redis.Redis(port=server.port, socket_connect_timeout=0.2, decode_responses=True)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                if ready(client):
                    return
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline or server.process.poll() is not None:
                server.stop()
                raise RuntimeError(f"redis-server did not start on port {server.port}")
            time.sleep(0.05)
    finally:
        client.close()


def _kill(server) -> None:
    """Kill the server's process by its PID, if it still runs."""
    if server.process is not None and server.process.poll() is None:
        server.process.kill()
        server.process.wait(timeout=10)
    server.process = None
