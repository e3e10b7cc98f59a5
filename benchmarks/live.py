"""
Live delivery: idle streams in one server process, and publish-to-receive latency.

One uvicorn process serves the project: the store under test, the Redis broker.
An asyncio client in this process opens idle streams, two for each user (a
laptop and a phone; tabs of one browser share one stream), first 1,000 and then
5,000 of them. The server's resident memory (``VmRSS`` in ``/proc/<pid>/status``)
is read with none open and with N open, after a warm-up that loaded what a
running server has loaded long since: the difference over N is the memory per
stream.

Then a third process sends one message at a time, at a steady rate, each to one
of the users whose streams are open. It stamps the moment each wake-up is
published (after the commit, as it goes to Redis); the client stamps each
arrival of that message on each of the user's streams. Both clocks are the
same machine's, so the difference is the publish-to-receive latency across
processes: Redis, the server's listener, the stream's read of the store, and
the HTTP write. Every message must reach both streams; a missing arrival is
reported beside the figure, as are the server's garbage-collection pauses and
the client's own lag, which explain a tail.

Last, one message goes to every user with a stream at once: the time until the
median and the last stream have it shows what a broadcast costs, since each
stream reads the store for itself.

Run with ``python benchmarks/run.py --only live``. The script starts and stops
every process itself and gives up after ``DEADLINE`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import REDIS_URL, log, row

NAME = "live"
SIZES = (1_000, 5_000)
QUICK_SIZES = (100, 300)
#: Streams per user: a laptop and a phone (tabs of one browser share one stream).
PER_USER = 2
#: Messages sent at each size, one at a time, ``SEND_RATE`` per second.
SENDS = 300
QUICK_SENDS = 60
SEND_RATE = 30
#: Streams the client opens at once; the rest wait their turn.
CONNECT_CONCURRENCY = 100
WARM_UP = 20
#: Seconds the broadcast may take to reach every stream before it counts as lost.
BROADCAST_WAIT = 60
#: Seconds for the whole benchmark, processes included.
DEADLINE = 420
MEMORY_TARGET_KB = 50.0
P99_TARGET_MS = 50.0
HERE = Path(__file__).resolve().parent

SETTINGS: dict[str, Any] = {
    "INSTALLED_APPS": [
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "pigeonhole",
    ],
    "MIDDLEWARE": [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ],
    "ROOT_URLCONF": "pigeonhole.urls",
    "ALLOWED_HOSTS": ["127.0.0.1"],
    # Sessions in signed cookies: opening thousands of streams costs no session
    # query, so the run spends its time on what it measures.
    "SESSION_ENGINE": "django.contrib.sessions.backends.signed_cookies",
}
_ARRIVAL = re.compile(rb'"message":"n=(\d+)"')


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to the hard limit; each stream is a socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def configure(config: dict[str, Any]) -> None:
    """Set Django up as the worker did: same database, same broker."""
    from harness import setup_django

    setup_django(config["database"], config["store"], **SETTINGS, PIGEONHOLE=config["pigeonhole"])


# --------------------------------------------------------------------------- server process


def record_gc_pauses(at_least: float = 0.02) -> None:
    """
    Print every garbage collection that stops the process for ``at_least`` seconds.

    With thousands of streams, a full collection walks every object each of
    them keeps; the pauses it causes show in the latency's tail, so the report
    names them beside it.
    """
    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif (took := time.perf_counter() - started[0]) >= at_least:
            print(f"gc-pause {took * 1000:.0f} {info['generation']}", file=sys.stderr, flush=True)

    gc.callbacks.append(callback)


def exit_with_parent() -> None:
    """End this process when the benchmark that started it is gone, however it went."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def serve(config: dict[str, Any], fd: int) -> None:
    """Serve the project with uvicorn on the listening socket ``fd``."""
    exit_with_parent()
    raise_fd_limit()
    configure(config)
    record_gc_pauses()
    import uvicorn
    from django.core.asgi import get_asgi_application

    uvicorn.run(get_asgi_application(), fd=fd, log_level="warning", lifespan="off", backlog=4096)


class Server:
    """The uvicorn process: started on a socket bound here, always stopped."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by __exit__
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> Server:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(4096)
            self.port = sock.getsockname()[1]
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "serve",
                    json.dumps(self.config),
                    str(sock.fileno()),
                ],
                pass_fds=[sock.fileno()],
                stdout=self.log,
                stderr=subprocess.STDOUT,
            )
        try:
            self.wait_ready(60)
        except BaseException:
            self.__exit__()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"GET /count/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    if sock.recv(100).startswith(b"HTTP/1.1 "):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer in {timeout} s:\n{self.output()}")
            time.sleep(0.1)

    def status(self, field: str) -> int:
        """A figure from the server's ``/proc/<pid>/status`` (kB figures in bytes)."""
        assert self.process is not None
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    parts = line.split()
                    return int(parts[1]) * (1024 if parts[-1] == "kB" else 1)
        raise RuntimeError(f"{field} not in /proc/{self.process.pid}/status")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def gc_pauses(self) -> list[float]:
        """The server's garbage-collection pauses so far, in milliseconds."""
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").splitlines()
        return [float(line.split()[1]) for line in lines if line.startswith("gc-pause ")]

    def __exit__(self, *exc: Any) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.log.close()


# --------------------------------------------------------------------------- sender process


def send(
    config: dict[str, Any], user_ids: list[int], first: int, count: int, out: str, mode: str
) -> None:
    """
    Send ``count`` messages numbered from ``first``, one at a time, round the users;
    with ``mode`` ``"all"``, send one message, numbered ``first``, to all of them.

    The publish time of each is taken as the broker is handed its wake-up, which
    happens once the send has committed: what comes before (the insert, the
    commit) is the sender's cost, not the delivery's.
    """
    configure(config)
    from django.contrib.auth import get_user_model

    import pigeonhole
    from pigeonhole.conf import get_broker

    users = {user.pk: user for user in get_user_model().objects.filter(pk__in=user_ids)}
    broker = get_broker()
    publish = broker.publish
    published: dict[int, float] = {}
    current = [0]

    def stamped(wakeups: Any) -> None:
        published[current[0]] = time.time()
        publish(wakeups)

    broker.publish = stamped  # type: ignore[method-assign]
    if mode == "all":
        current[0] = first
        pigeonhole.send(get_user_model().objects.filter(pk__in=user_ids), f"n={first}")
        count = 0
    start = time.monotonic()
    for k in range(count):
        current[0] = first + k
        pigeonhole.send(users[user_ids[k % len(user_ids)]], f"n={first + k}")
        pause = start + (k + 1) / SEND_RATE - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    Path(out).write_text(json.dumps(published))


async def run_sender(
    config: dict[str, Any], user_ids: list[int], first: int, count: int, mode: str = "each"
) -> dict[int, float]:
    """Run ``send()`` in another process; return its publish times by message number."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = handle.name
    args = [json.dumps(config), json.dumps(user_ids), str(first), str(count), out, mode]
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "send", *args, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(30 + 2 * count / SEND_RATE):
            _, errors = await process.communicate()
        if process.returncode:
            tail = errors.decode(errors="replace")[-2000:]
            raise RuntimeError(f"the sender exited with status {process.returncode}:\n{tail}")
        return {int(n): t for n, t in json.loads(Path(out).read_text()).items()}
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        Path(out).unlink(missing_ok=True)


# --------------------------------------------------------------------------- client


class Streams:
    """Idle streams held open by this process, noting every arrival of a numbered message."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.arrivals: list[tuple[int, float]] = []
        self.open: list[tuple[asyncio.StreamWriter, asyncio.Task[None]]] = []
        self.gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        self.lag = 0.0

    async def connect(self, cookie: str) -> None:
        """Open one stream and return once its first ``count`` event arrived."""
        async with self.gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=2**20)
            writer.write(
                b"GET /stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                b"Cookie: sessionid=" + cookie.encode() + b"\r\n\r\n"
            )
            status = await reader.readline()
            if not status.startswith(b"HTTP/1.1 200"):
                writer.close()
                raise RuntimeError(f"the stream was refused: {status!r}")
            while (line := await reader.readline()) and line != b"event: count\n":
                pass
            if not line:
                raise RuntimeError("the stream closed before its first event")
        self.open.append((writer, asyncio.create_task(self.listen(reader))))

    async def listen(self, reader: asyncio.StreamReader) -> None:
        # The body is chunked; chunk sizes come on lines of their own and match nothing.
        while line := await reader.readline():
            if line.startswith(b"data: ") and (match := _ARRIVAL.search(line)):
                self.arrivals.append((int(match[1]), time.time()))

    async def watch_lag(self) -> None:
        """Note how late this loop wakes: a stalled client would pass for a slow server."""
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lag = time.monotonic() - before - 0.01
            self.lag = max(self.lag, lag)

    async def open_many(self, cookies: list[str]) -> None:
        await asyncio.gather(*(self.connect(cookie) for cookie in cookies))

    def alive(self) -> int:
        return sum(not task.done() for _, task in self.open)

    async def close(self, count: int | None = None) -> None:
        closing, self.open = (
            (self.open, []) if count is None else (self.open[:count], self.open[count:])
        )
        for writer, task in closing:
            task.cancel()
            writer.close()
        for _, task in closing:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def make_users(count: int) -> list[tuple[int, str]]:
    """
    Create ``count`` users; return each one's id and session cookie.

    The session is built as ``login()`` builds it, without the request and the
    ``last_login`` write it would cost thousands of times.
    """
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )

    SessionStore = import_module(settings.SESSION_ENGINE).SessionStore
    User = get_user_model()
    User.objects.bulk_create(User(username=f"live{i:05d}", password="!") for i in range(count))
    users = []
    for user in User.objects.filter(username__startswith="live").order_by("pk"):
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        users.append((user.pk, session.session_key))
    return users


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def server_stack() -> str:
    """Name what uvicorn runs on: its defaults pick httptools and uvloop when installed."""
    from importlib.metadata import version
    from importlib.util import find_spec

    http = "httptools" if find_spec("httptools") else "h11"
    loop = "uvloop" if find_spec("uvloop") else "asyncio"
    return f"uvicorn {version('uvicorn')} ({http}, {loop})"


async def memory_row(
    store: str, server: Server, streams: Streams, baseline: int, n: int, last: bool
) -> dict[str, Any]:
    await asyncio.sleep(2)  # let the server settle before reading its memory
    rss = server.status("VmRSS")
    held = streams.alive()
    detail = (
        f"RSS {baseline / 2**20:.0f} MB without streams, {rss / 2**20:.0f} MB with {held}; "
        f"{server.status('Threads')} server threads; {server_stack()}"
    )
    log(f"[{store}] live: {detail}")
    return row(
        NAME,
        store,
        f"memory per idle stream, {n:,} streams",
        (rss - baseline) / held / 1024,
        "KB",
        target=MEMORY_TARGET_KB if last else None,
        at_least=False,
        detail=detail,
    )


async def latency_rows(
    store: str,
    server: Server,
    streams: Streams,
    config: dict[str, Any],
    user_ids: list[int],
    first: int,
    sends: int,
    n: int,
    target: float | None,
) -> list[dict[str, Any]]:
    streams.arrivals.clear()
    streams.lag = 0.0
    pauses_before = len(server.gc_pauses())
    watcher = asyncio.create_task(streams.watch_lag())
    # The client is the measuring instrument: its own collections, walking the
    # thousands of streams it holds, would pass for the server's delay.
    gc.disable()
    try:
        published = await run_sender(config, user_ids, first, sends)
        await asyncio.sleep(1)  # the last arrivals
    finally:
        gc.enable()
        watcher.cancel()
    latencies = [(at - published[k]) * 1000 for k, at in streams.arrivals if k in published]
    expected = sends * PER_USER
    pauses = server.gc_pauses()[pauses_before:]
    detail = (
        f"{len(latencies)} of {expected} arrivals"
        f"{'' if len(latencies) == expected else ' (SOME MISSING)'}, "
        f"{sends} messages at {SEND_RATE}/s; server GC pauses >= 20 ms: "
        f"{', '.join(f'{p:.0f}' for p in pauses) or 'none'}; client lag max "
        f"{streams.lag * 1000:.0f} ms"
    )
    log(f"[{store}] live: {n} streams: {detail}")
    if not latencies:
        raise RuntimeError(f"no message arrived ({detail})")
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    log(f"[{store}] live: {n} streams: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    name = f"publish-to-receive %s, {n:,} streams"
    return [
        row(NAME, store, name % "p50", p50, "ms", detail=detail),
        row(NAME, store, name % "p99", p99, "ms", target=target, at_least=False, detail=detail),
    ]


async def broadcast_rows(
    store: str,
    server: Server,
    streams: Streams,
    config: dict[str, Any],
    user_ids: list[int],
    number: int,
    n: int,
) -> list[dict[str, Any]]:
    """
    Send one message to every user with a stream: how long until the last stream has it.

    Each stream reads the store for itself, through a small shared pool, so
    this time grows with the number of streams the message wakes.
    """
    streams.arrivals.clear()
    held = streams.alive()
    gc.disable()  # as in latency_rows: the client must not stall on its own account
    try:
        published = await run_sender(config, user_ids, number, 1, mode="all")
        deadline = time.monotonic() + BROADCAST_WAIT
        while len(streams.arrivals) < held and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        gc.enable()
    latencies = [(at - published[number]) * 1000 for k, at in streams.arrivals if k == number]
    detail = f"{len(latencies)} of {held} streams within {BROADCAST_WAIT} s"
    if len(latencies) < held:
        detail += " (SOME MISSING)"
    log(f"[{store}] live: broadcast to {n} streams: {detail}")
    if not latencies:
        raise RuntimeError(f"the broadcast reached no stream ({detail})")
    name = f"broadcast to {n:,} streams, %s arrival"
    return [
        row(NAME, store, name % "median", statistics.median(latencies), "ms", detail=detail),
        row(NAME, store, name % "last", max(latencies), "ms", detail=detail),
    ]


async def measure(
    store: str, server: Server, config: dict[str, Any], users: list[tuple[int, str]], quick: bool
) -> list[dict[str, Any]]:
    sizes, sends = (QUICK_SIZES, QUICK_SENDS) if quick else (SIZES, SENDS)
    streams = Streams(server.port)
    rows: list[dict[str, Any]] = []
    try:
        # The first streams and messages load what a running server has loaded
        # long since: the broker's listener, lazy imports, the pool's threads.
        # The baseline is read after them, with no stream open.
        warm = users[:WARM_UP]
        await streams.open_many([cookie for _, cookie in warm])
        await run_sender(config, [pk for pk, _ in warm], -WARM_UP, WARM_UP)
        await streams.close()
        await asyncio.sleep(1)
        baseline = server.status("VmRSS")
        first = 0
        for n in sizes:
            started = time.monotonic()
            holders = users[: n // PER_USER]
            wanted = [cookie for _, cookie in holders for _ in range(PER_USER)]
            await streams.open_many(wanted[len(streams.open) :])
            log(f"[{store}] live: {n} streams open in {time.monotonic() - started:.1f} s")
            rows.append(await memory_row(store, server, streams, baseline, n, n == sizes[-1]))
            target = P99_TARGET_MS if n == sizes[0] else None
            user_ids = [pk for pk, _ in holders]
            rows += await latency_rows(
                store, server, streams, config, user_ids, first, sends, n, target
            )
            first += sends
        rows += await broadcast_rows(
            store, server, streams, config, [pk for pk, _ in holders], first, n
        )
        rows.append(
            row(
                NAME,
                store,
                "idle streams held by one process",
                streams.alive(),
                "streams",
                detail=f"of {sizes[-1]:,} opened, each answered its first event",
            )
        )
    finally:
        await streams.close()
    return rows


def run(store: str, quick: bool = False) -> list[dict[str, Any]]:
    import redis
    from django.conf import settings
    from harness import Skip

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        raise Skip(f"the Redis broker needs Redis at {REDIS_URL}: {exc}") from exc
    raise_fd_limit()
    sizes = QUICK_SIZES if quick else SIZES
    users = make_users(max(sizes) // PER_USER)
    config = {
        "database": settings.DATABASES["default"],
        "store": store,
        "pigeonhole": {
            "BROKER": "pigeonhole.brokers.redis.RedisBroker",
            "BROKER_OPTIONS": {"url": REDIS_URL, "channel": f"pigeonhole-bench-{os.getpid()}"},
        },
    }
    from django.db import connections

    connections.close_all()  # the server and the sender open their own

    async def bounded() -> list[dict[str, Any]]:
        async with asyncio.timeout(DEADLINE):
            return await measure(store, server, config, users, quick)

    with Server(config) as server:
        return asyncio.run(bounded())


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(json.loads(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "send":
        config, user_ids, first, count, out, mode = sys.argv[2:]
        send(json.loads(config), json.loads(user_ids), int(first), int(count), out, mode)
