"""
Live delivery at broadcast scale: idle streams, latency, broadcasts, reconnect storms.

uvicorn processes serve the project (the store under test). An asyncio client
in this process opens idle streams, two for each user (a laptop and a phone;
tabs of one browser share one stream). Another process sends messages and
stamps the moment each is published (after the commit); the client stamps
each arrival on each stream. Both clocks are the same machine's.

One server, Redis broker:

- 5,000 streams: 100 sends a second, each to a random user with streams:
  publish-to-receive p50 and p99 (with the server's GC pauses and the client's
  own lag beside them, which explain a tail);
- the same 5,000 streams dropped and reopened at once with their
  ``Last-Event-ID``, a message having been sent meanwhile: the time until every
  stream is back and has it, and the store reads and SQL statements the server
  ran per reconnect;
- 10,000 streams: memory per idle stream (``VmRSS`` with them open minus
  without, over N, after a warm-up), and one message to everyone.

Two servers, 5,000 streams each, behind the Redis broker and (on PostgreSQL)
the PostgreSQL broker: one message to every user, the median and last arrival
overall and per process, and the store reads each process ran for it.

Every server counts its store reads (calls of the backend's reading methods)
and SQL statements, and reports them with its CPU time on ``SIGUSR1``.

Run with ``python benchmarks/run.py --only live``. The script starts and stops
every process itself and gives up after ``DEADLINE`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import re
import resource
import signal
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
#: Streams for the latency and reconnect figures, and for the memory figure.
LATENCY_STREAMS, MEMORY_STREAMS = 5_000, 10_000
QUICK_LATENCY_STREAMS, QUICK_MEMORY_STREAMS = 200, 400
#: Streams per user: a laptop and a phone (tabs of one browser share one stream).
PER_USER = 2
#: Messages sent, one at a time, ``SEND_RATE`` per second, each to a random user.
SENDS = 1_000
QUICK_SENDS = 100
SEND_RATE = 100
#: Streams the client opens at once; the rest wait their turn. Each request opens a
#: database connection of its own (Django under ASGI), and the server is shared.
CONNECT_CONCURRENCY = 50
WARM_UP = 20
#: Seconds the broadcast may take to reach every stream before it counts as lost.
BROADCAST_WAIT = 60
#: Seconds for the whole benchmark, processes included.
DEADLINE = 900
MEMORY_TARGET_KB = 30.0
P99_TARGET_MS = 50.0
BROADCAST_MEDIAN_TARGET_MS = 250.0
BROADCAST_LAST_TARGET_MS = 1_000.0
RECONNECT_TARGET_MS = 5_000.0
READS_PER_BROADCAST_TARGET = 1.0
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
    # A server error goes to the server's log, which a failed run shows.
    "LOGGING": {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"stderr": {"class": "logging.StreamHandler"}},
        "loggers": {
            "django.request": {"handlers": ["stderr"], "level": "ERROR"},
            "pigeonhole": {"handlers": ["stderr"], "level": "WARNING"},
        },
    },
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
    names them beside it. On a machine whose cores are busy with other work a
    pause's wall time includes the time the process waited for a core, so the
    CPU time of every collection is added up as well (``GC_CPU``), for the
    counters to report.
    """
    started = [0.0, 0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[:] = time.perf_counter(), time.thread_time()
            return
        GC_CPU[0] += time.thread_time() - started[1]
        if (took := time.perf_counter() - started[0]) >= at_least:
            print(f"gc-pause {took * 1000:.0f} {info['generation']}", file=sys.stderr, flush=True)

    gc.callbacks.append(callback)


#: CPU seconds the server spent in garbage collections.
GC_CPU = [0.0]

#: The backend's reading methods: a call of one is a store read.
STORE_READS = ("list", "count", "counts", "state", "get", "deliveries", "snapshots")


def count_store_reads() -> None:
    """
    Count the server's store reads and SQL statements; print them on ``SIGUSR1``.

    A store read is a call of one of the backend's reading methods, whatever the
    store; SQL statements are counted as well, since a read may run several.
    The line also carries the process's CPU time, to set beside wall times on a
    machine where other processes compete for the cores.
    """
    import signal

    from django.db.backends.signals import connection_created
    from django.db.backends.utils import CursorWrapper

    from pigeonhole.conf import get_backend

    counts = {"reads": 0, "sql": 0, "connections": 0}

    def opened(**kwargs: Any) -> None:
        counts["connections"] += 1

    connection_created.connect(opened, weak=False)
    backend_class = type(get_backend())
    for name in STORE_READS:
        method = getattr(backend_class, name)

        def counted(self: Any, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            counts["reads"] += 1
            return _method(self, *args, **kwargs)

        setattr(backend_class, name, counted)
    execute = CursorWrapper._execute_with_wrappers

    def counted_sql(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["sql"] += 1
        return execute(self, *args, **kwargs)

    CursorWrapper._execute_with_wrappers = counted_sql  # type: ignore[method-assign]

    def report(signum: int, frame: Any) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime
        figures = (
            f"{counts['reads']} {counts['sql']} {cpu:.3f} {counts['connections']} {GC_CPU[0]:.3f}"
        )
        print(f"counters {figures}", file=sys.stderr, flush=True)
        print(TIMELINE.line(), file=sys.stderr, flush=True)
        TIMELINE.clear()

    signal.signal(signal.SIGUSR1, report)


class Timeline:
    """
    When the server heard a broadcast, read it, and wrote it to its first and last stream.

    Wall-clock stamps (``time.time()``, as the sender's publish stamp), so the
    benchmark can say where the time between the publish and the arrivals went:
    the broker's delivery, the store read, the wait for the first write, and
    the writes themselves. Beside them the process's CPU time from hearing the
    broadcast to its first and its last write: on a machine whose cores are
    busy with other work, wall times stretch, CPU times much less.
    Cleared each time the counters are reported.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.heard = self.heard_cpu = 0.0
        self.read: tuple[float, float] = (0.0, 0.0)
        self.read_cpu: tuple[float, float] = (0.0, 0.0)
        self.first = self.last = self.first_cpu = self.last_cpu = 0.0
        self.writes = 0
        #: Every write's time, for the median: what the server alone makes of it.
        self.times: list[float] = []

    def hear(self) -> None:
        if not self.heard:
            self.heard, self.heard_cpu = time.time(), time.process_time()

    def wrote(self) -> None:
        now, cpu = time.time(), time.process_time()
        if not self.writes:
            self.first, self.first_cpu = now, cpu
        self.last, self.last_cpu = now, cpu
        self.writes += 1
        self.times.append(now)

    def line(self) -> str:
        median = statistics.median(self.times) if self.times else 0.0
        return (
            f"timeline {self.heard:.6f} {self.read[0]:.6f} {self.read[1]:.6f} "
            f"{self.first:.6f} {median:.6f} {self.last:.6f} {self.writes} "
            f"{self.first_cpu - self.heard_cpu:.6f} {self.last_cpu - self.heard_cpu:.6f} "
            f"{self.read_cpu[0] - self.heard_cpu:.6f} {self.read_cpu[1] - self.heard_cpu:.6f}"
        )


TIMELINE = Timeline()


def record_timeline(application: Any) -> Any:
    """
    Stamp the broker's deliveries, the reads of new messages, and every write of one.

    The writes are stamped as the server's ``send()`` returns, the socket
    written: the moment that matters to the client, whatever runs before it.
    """
    from pigeonhole import live
    from pigeonhole.brokers.base import BaseBroker

    deliver, read_sent = BaseBroker.deliver, live.read_sent

    def heard(self: Any, payload: Any) -> None:
        TIMELINE.hear()
        deliver(self, payload)

    async def timed_read(*args: Any, **kwargs: Any) -> Any:
        started, started_cpu = time.time(), time.process_time()
        try:
            return await read_sent(*args, **kwargs)
        finally:
            TIMELINE.read = (started, time.time())
            TIMELINE.read_cpu = (started_cpu, time.process_time())

    BaseBroker.deliver = heard  # type: ignore[method-assign]
    live.read_sent = timed_read

    async def timed(scope: Any, receive: Any, send: Any) -> Any:
        async def timed_send(message: Any) -> None:
            await send(message)
            if b'"message":"n=' in message.get("body", b""):
                TIMELINE.wrote()

        return await application(scope, receive, timed_send)

    return timed


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
    count_store_reads()
    import uvicorn
    from django.core.asgi import get_asgi_application

    from pigeonhole.asgi import live_streams

    # The streams are served as docs/live.md advises a site to serve them
    # (live_streams: on the event loop, no thread per request); record_timeline
    # stamps each broadcast's moments around that.
    application = record_timeline(live_streams(get_asgi_application()))
    uvicorn.run(application, fd=fd, log_level="warning", lifespan="off", backlog=4096)


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

    def counters(self) -> tuple[int, int, float, int, float]:
        """
        The server's store reads, SQL statements, CPU seconds, connections opened and
        CPU seconds in garbage collections so far.
        """
        assert self.process is not None
        before = len(self._lines("counters "))
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while len(lines := self._lines("counters ")) == before:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not report its counters:\n{self.output()}")
            time.sleep(0.02)
        _, reads, sql, cpu, opened, gc_cpu = lines[-1].split()
        return int(reads), int(sql), float(cpu), int(opened), float(gc_cpu)

    def _lines(self, prefix: str) -> list[str]:
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").splitlines()
        return [line for line in lines if line.startswith(prefix)]

    def timeline(self, published: float) -> str:
        """
        Where the last broadcast's time went in this server, in ms from ``published``.

        Read after ``counters()``, which reports the timeline of what happened
        since the call before.
        """
        lines = self._lines("timeline ")
        if not lines:
            return "no timeline"
        heard, read0, read1, first, median, last, writes, cpu_first, cpu_last, cpu0, cpu1 = (
            float(x) for x in lines[-1].split()[1:]
        )
        if not writes:
            return "no writes"

        def ms(at: float) -> str:
            return f"{(at - published) * 1000:.0f}" if at else "-"

        return (
            f"heard {ms(heard)}, read {ms(read0)}-{ms(read1)}, "
            f"first write {ms(first)}, median {ms(median)}, last {ms(last)} ms "
            f"({writes:.0f} writes); "
            f"CPU from heard to read {cpu0 * 1000:.0f}-{cpu1 * 1000:.0f} ms, to first write "
            f"{cpu_first * 1000:.0f} ms, to last {cpu_last * 1000:.0f} ms"
        )

    def gc_pauses(self) -> list[float]:
        """The server's garbage-collection pauses so far, in milliseconds."""
        return [float(line.split()[1]) for line in self._lines("gc-pause ")]

    def __exit__(self, *exc: Any) -> None:
        if exc and exc[0] is not None and self.process is not None:
            log(f"the server's output:\n{self.output()}")
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
    Send ``count`` messages numbered from ``first``, one at a time, each to a random
    one of the users; with ``mode`` ``"all"``, one message, numbered ``first``, to
    every user the benchmark made.

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
        # Everyone the benchmark made, as a QuerySet: one Sent, the recipients unlisted.
        current[0] = first
        pigeonhole.send(get_user_model().objects.filter(username__startswith="live"), f"n={first}")
        count = 0
    start = time.monotonic()
    chosen = random.Random(first)
    for k in range(count):
        current[0] = first + k
        pigeonhole.send(users[chosen.choice(user_ids)], f"n={first + k}")
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

    def __init__(self) -> None:
        #: (message number, arrival time, server port)
        self.arrivals: list[tuple[int, float, int]] = []
        self.open: list[Stream] = []
        self.gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        self.lag = 0.0

    async def connect(self, cookie: str, port: int, last_event_id: str | None = None) -> Stream:
        """Open one stream and return once its first event arrived."""
        stream = Stream(cookie, port, last_event_id)
        async with self.gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
            resume = (
                b""
                if last_event_id is None
                else b"Last-Event-ID: %s\r\n" % (last_event_id.encode())
            )
            writer.write(
                b"GET /stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                + resume
                + b"Cookie: sessionid="
                + cookie.encode()
                + b"\r\n\r\n"
            )
            status = await reader.readline()
            if not status.startswith(b"HTTP/1.1 200"):
                writer.close()
                raise RuntimeError(f"the stream was refused: {status!r}")
        stream.writer = writer
        stream.task = asyncio.create_task(self.listen(stream, reader))
        await stream.started.wait()
        self.open.append(stream)
        return stream

    async def listen(self, stream: Stream, reader: asyncio.StreamReader) -> None:
        # Whole reads, searched at once: the client, the measuring instrument,
        # must not fall behind thousands of streams parsing them line by line.
        # An event is one write of the server's, so it comes whole in one read.
        while chunk := await reader.read(65536):
            now = time.time()
            if not stream.started.is_set() and b"data: " in chunk:
                stream.started.set()
            for match in _ARRIVAL.finditer(chunk):
                self.arrivals.append((int(match[1]), now, stream.port))
            if (at := chunk.rfind(b"\nid: ")) != -1:
                stream.last_event_id = chunk[at + 5 : chunk.index(b"\n", at + 1)].decode()

    async def watch_lag(self) -> None:
        """Note how late this loop wakes: a stalled client would pass for a slow server."""
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lag = time.monotonic() - before - 0.01
            self.lag = max(self.lag, lag)

    async def open_many(self, cookies: list[str], ports: list[int]) -> None:
        """Open a stream for each cookie, spread over the servers at ``ports``."""
        await asyncio.gather(
            *(self.connect(cookie, ports[i % len(ports)]) for i, cookie in enumerate(cookies))
        )

    async def wait_for(self, arrivals: int) -> None:
        """Wait until ``arrivals`` messages arrived, or ``BROADCAST_WAIT`` seconds passed."""
        deadline = time.monotonic() + BROADCAST_WAIT
        while len(self.arrivals) < arrivals and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    def alive(self) -> int:
        return sum(not stream.task.done() for stream in self.open if stream.task is not None)

    async def close(self, count: int | None = None) -> list[Stream]:
        closing, self.open = (
            (self.open, []) if count is None else (self.open[:count], self.open[count:])
        )
        for stream in closing:
            if stream.task is not None:
                stream.task.cancel()
            if stream.writer is not None:
                stream.writer.close()
        for stream in closing:
            if stream.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await stream.task
        return closing


class Stream:
    """One open stream: where it goes, and the cursor it would reconnect with."""

    __slots__ = ("cookie", "last_event_id", "port", "started", "task", "writer")

    def __init__(self, cookie: str, port: int, last_event_id: str | None) -> None:
        self.cookie = cookie
        self.port = port
        self.last_event_id = last_event_id
        self.started = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.writer: asyncio.StreamWriter | None = None


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
    store: str, server: Server, streams: Streams, baseline: int, n: int
) -> dict[str, Any]:
    await asyncio.sleep(2)  # let the server settle before reading its memory
    rss = server.status("VmRSS")
    held = streams.alive()
    detail = (
        f"RSS {baseline / 2**20:.0f} MB without streams, {rss / 2**20:.0f} MB with {held}; "
        f"{server.status('Threads')} server threads; {server_stack()}"
    )
    log(f"[{store}] live: {detail}")
    return at_most(
        store,
        f"memory per idle stream, {n:,} streams, 1 process",
        (rss - baseline) / held / 1024,
        "KB",
        MEMORY_TARGET_KB,
        detail,
    )


def at_most(
    store: str, metric: str, value: float, unit: str, target: float | None, detail: str
) -> dict[str, Any]:
    """A figure whose target, if any, is a most."""
    return row(NAME, store, metric, value, unit, target=target, at_least=False, detail=detail)


class Clock:
    """Wall time, this client's CPU time and the whole machine's, from one moment on."""

    def __init__(self) -> None:
        self.wall = time.monotonic()
        self.client = self._client()
        self.machine = self._machine()

    @staticmethod
    def _client() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    @staticmethod
    def _machine() -> float:
        # Busy CPU seconds of every core (user, nice, system, irq, softirq, steal).
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        busy = fields[0] + fields[1] + fields[2] + sum(fields[5:8])
        return busy / os.sysconf("SC_CLK_TCK")

    def note(self, servers: list[Server], before: list[tuple[int, int, float, int, float]]) -> str:
        """Wall time beside the CPU time of the servers, of this client and of the machine."""
        wall = time.monotonic() - self.wall
        after = [server.counters() for server in servers]
        cpu = [a[2] - b[2] for a, b in zip(after, before, strict=True)]
        gc_cpu = [a[4] - b[4] for a, b in zip(after, before, strict=True)]
        return (
            f"wall {wall:.1f} s; CPU: servers {' + '.join(f'{c:.2f}' for c in cpu)} s "
            f"(garbage collections {' + '.join(f'{c:.2f}' for c in gc_cpu)} s), "
            f"client {self._client() - self.client:.1f} s, whole machine "
            f"{self._machine() - self.machine:.1f} s of {wall * (os.cpu_count() or 1):.1f}"
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
) -> list[dict[str, Any]]:
    streams.arrivals.clear()
    streams.lag = 0.0
    pauses_before = len(server.gc_pauses())
    before = [server.counters()]
    clock = Clock()
    watcher = asyncio.create_task(streams.watch_lag())
    # The client is the measuring instrument: its own collections, walking the
    # thousands of streams it holds, would pass for the server's delay.
    gc.disable()
    try:
        published = await run_sender(config, user_ids, first, sends)
        # Every arrival counts, however late: a fixed wait would leave out the
        # slowest, the very ones the p99 is about, and call them missing.
        await streams.wait_for(sends * PER_USER)
    finally:
        gc.enable()
        watcher.cancel()
    latencies = [(at - published[k]) * 1000 for k, at, _ in streams.arrivals if k in published]
    expected = sends * PER_USER
    pauses = server.gc_pauses()[pauses_before:]
    detail = (
        f"{len(latencies)} of {expected} arrivals"
        f"{'' if len(latencies) == expected else ' (SOME MISSING)'}, "
        f"{sends} messages at {SEND_RATE}/s to random users; server GC pauses >= 20 ms: "
        f"{', '.join(f'{p:.0f}' for p in pauses) or 'none'}; client lag max "
        f"{streams.lag * 1000:.0f} ms; {clock.note([server], before)}"
    )
    log(f"[{store}] live: {n} streams: {detail}")
    if not latencies:
        raise RuntimeError(f"no message arrived ({detail})")
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    log(f"[{store}] live: {n} streams: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    name = f"publish-to-receive %s, {n:,} streams, {SEND_RATE} sends/s"
    return [
        row(NAME, store, name % "p50", p50, "ms", detail=detail),
        at_most(store, name % "p99", p99, "ms", P99_TARGET_MS, detail),
    ]


async def broadcast_rows(
    store: str,
    label: str,
    servers: list[Server],
    streams: Streams,
    config: dict[str, Any],
    number: int,
    targets: bool,
) -> list[dict[str, Any]]:
    """
    Send one message to every user: when the median and the last stream have it,
    overall and per process, and how many store reads each process made for it.
    """
    streams.arrivals.clear()
    held = streams.alive()
    before = [server.counters() for server in servers]
    pauses = [len(server.gc_pauses()) for server in servers]
    clock = Clock()
    gc.disable()  # as in latency_rows: the client must not stall on its own account
    try:
        published = await run_sender(config, [], number, 1, mode="all")
        await streams.wait_for(held)
    finally:
        gc.enable()
    note = clock.note(servers, before)
    # The counters just reported carry each server's timeline of the broadcast.
    timelines = [server.timeline(published[number]) for server in servers]
    await asyncio.sleep(0.5)  # the servers' counters settle
    after = [server.counters() for server in servers]
    arrivals = [(at, port) for k, at, port in streams.arrivals if k == number]
    latencies = [(at - published[number]) * 1000 for at, _ in arrivals]
    n = held
    detail = f"{len(latencies)} of {held} streams within {BROADCAST_WAIT} s"
    if len(latencies) < held:
        detail += " (SOME MISSING)"
    per_process = []
    reads = []
    for server, seen, timeline, (r0, q0, *_), (r1, q1, *_) in zip(
        servers, pauses, timelines, before, after, strict=True
    ):
        mine = [(at - published[number]) * 1000 for at, port in arrivals if port == server.port]
        reads.append(r1 - r0)
        if mine:
            per_process.append(
                f"process {len(per_process) + 1}: {len(mine)} streams, median "
                f"{statistics.median(mine):.0f} ms, last {max(mine):.0f} ms, "
                f"{r1 - r0} store reads, {q1 - q0} SQL statements, GC pauses >= 20 ms: "
                f"{', '.join(f'{p:.0f}' for p in server.gc_pauses()[seen:]) or 'none'}; "
                f"{timeline}"
            )
    detail += f"; {'; '.join(per_process)}; {note}"
    log(f"[{store}] live: broadcast, {label}: {detail}")
    if not latencies:
        raise RuntimeError(f"the broadcast reached no stream ({detail})")
    name = f"broadcast to {n:,} streams, {label}, %s"
    median_target = BROADCAST_MEDIAN_TARGET_MS if targets else None
    last_target = BROADCAST_LAST_TARGET_MS if targets else None
    return [
        at_most(
            store,
            name % "median arrival",
            statistics.median(latencies),
            "ms",
            median_target,
            detail,
        ),
        at_most(store, name % "last arrival", max(latencies), "ms", last_target, detail),
        at_most(
            store,
            name % "store reads per process",
            max(reads),
            "reads",
            READS_PER_BROADCAST_TARGET,
            detail,
        ),
    ]


async def reconnect_rows(
    store: str,
    server: Server,
    streams: Streams,
    config: dict[str, Any],
    number: int,
) -> list[dict[str, Any]]:
    """
    Drop every stream at once, send a message while they are away, and reopen them
    all at once with their ``Last-Event-ID``: how long until every one has the message.
    """
    dropped = await streams.close()
    n = len(dropped)
    await run_sender(config, [], number, 1, mode="all")
    streams.arrivals.clear()
    before = server.counters()
    pauses = len(server.gc_pauses())
    clock = Clock()
    started = time.monotonic()
    gc.disable()
    try:
        await asyncio.gather(*(streams.connect(s.cookie, s.port, s.last_event_id) for s in dropped))
        back = time.monotonic() - started
        await streams.wait_for(n)
    finally:
        gc.enable()
    caught_up = time.monotonic() - started
    note = clock.note([server], [before])
    await asyncio.sleep(0.5)
    after = server.counters()
    got = sum(1 for k, _, _ in streams.arrivals if k == number)
    reads, sql, opened = after[0] - before[0], after[1] - before[1], after[3] - before[3]
    gc_pauses = ", ".join(f"{p:.0f}" for p in server.gc_pauses()[pauses:]) or "none"
    detail = (
        f"{streams.alive()} of {n} streams back in {back:.1f} s, {got} of {n} caught up"
        f"{'' if got == n else ' (SOME MISSING)'}; {note}; {reads} store reads, {sql} SQL "
        f"statements (the request's own, loading the user, included) on {opened} database "
        f"connections; server GC pauses >= 20 ms: {gc_pauses}"
    )
    log(f"[{store}] live: reconnect of {n} streams: {detail}")
    name = f"reconnect of {n:,} streams at once, %s"
    return [
        at_most(
            store,
            name % "all back and caught up",
            caught_up * 1000,
            "ms",
            RECONNECT_TARGET_MS,
            detail,
        ),
        row(NAME, store, name % "store reads per reconnect", reads / n, "reads", detail=detail),
        row(NAME, store, name % "SQL statements per reconnect", sql / n, "queries", detail=detail),
    ]


def broker_config(store: str, broker: str, database: dict[str, Any]) -> dict[str, Any]:
    channel = f"pigeonhole-bench-{os.getpid()}"
    if broker == "redis":
        options: dict[str, Any] = {"url": REDIS_URL, "channel": channel}
        name = "pigeonhole.brokers.redis.RedisBroker"
    else:
        options = {"channel": channel.replace("-", "_")}
        name = "pigeonhole.brokers.postgres.PostgresBroker"
    return {
        "database": database,
        "store": store,
        "pigeonhole": {
            "BROKER": name,
            "BROKER_OPTIONS": options,
            "STREAM_MAX_PER_PROCESS": None,
        },
    }


async def warm_up(
    servers: list[Server], streams: Streams, config: dict[str, Any], users: list[tuple[int, str]]
) -> None:
    """Load what a running server has loaded long since: listener, lazy imports, threads."""
    warm = users[:WARM_UP]
    ports = [server.port for server in servers]
    await streams.open_many([cookie for _, cookie in warm for _ in ports], ports)
    await run_sender(config, [pk for pk, _ in warm], -WARM_UP, WARM_UP)
    await streams.close()
    await asyncio.sleep(1)


async def one_process(
    store: str, config: dict[str, Any], users: list[tuple[int, str]], quick: bool
) -> list[dict[str, Any]]:
    latency_n = QUICK_LATENCY_STREAMS if quick else LATENCY_STREAMS
    memory_n = QUICK_MEMORY_STREAMS if quick else MEMORY_STREAMS
    sends = QUICK_SENDS if quick else SENDS
    rows: list[dict[str, Any]] = []
    streams = Streams()
    with Server(config) as server:
        try:
            await warm_up([server], streams, config, users)
            baseline = server.status("VmRSS")
            holders = users[: latency_n // PER_USER]
            started = time.monotonic()
            await streams.open_many(
                [cookie for _, cookie in holders for _ in range(PER_USER)], [server.port]
            )
            log(f"[{store}] live: {latency_n} streams open in {time.monotonic() - started:.1f} s")
            rows += await latency_rows(
                store, server, streams, config, [pk for pk, _ in holders], 0, sends, latency_n
            )
            rows += await reconnect_rows(store, server, streams, config, sends)
            more = users[latency_n // PER_USER : memory_n // PER_USER]
            await streams.open_many(
                [cookie for _, cookie in more for _ in range(PER_USER)], [server.port]
            )
            rows.append(await memory_row(store, server, streams, baseline, memory_n))
            rows += await broadcast_rows(
                store, "1 process, Redis broker", [server], streams, config, sends + 1, False
            )
            rows.append(
                row(
                    NAME,
                    store,
                    "idle streams held by one process",
                    streams.alive(),
                    "streams",
                    detail=f"of {memory_n:,} opened, each answered its first event",
                )
            )
        finally:
            await streams.close()
    return rows


async def two_processes(
    store: str,
    broker: str,
    config: dict[str, Any],
    users: list[tuple[int, str]],
    quick: bool,
    number: int,
) -> list[dict[str, Any]]:
    n = QUICK_MEMORY_STREAMS if quick else MEMORY_STREAMS
    streams = Streams()
    with Server(config) as first, Server(config) as second:
        servers = [first, second]
        try:
            await warm_up(servers, streams, config, users)
            holders = users[: n // PER_USER]
            started = time.monotonic()
            await streams.open_many(
                [cookie for _, cookie in holders for _ in range(PER_USER)],
                [server.port for server in servers],
            )
            log(
                f"[{store}] live: {n} streams open over 2 processes in "
                f"{time.monotonic() - started:.1f} s"
            )
            label = f"2 processes, {'Redis' if broker == 'redis' else 'PostgreSQL'} broker"
            return await broadcast_rows(store, label, servers, streams, config, number, True)
        finally:
            await streams.close()


async def measure(
    store: str, database: dict[str, Any], users: list[tuple[int, str]], quick: bool
) -> list[dict[str, Any]]:
    rows = await one_process(store, broker_config(store, "redis", database), users, quick)
    brokers = ["redis", "postgres"] if database["ENGINE"].endswith("postgresql") else ["redis"]
    for number, broker in enumerate(brokers, start=100_000):
        config = broker_config(store, broker, database)
        rows += await two_processes(store, broker, config, users, quick, number)
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
    users = make_users((QUICK_MEMORY_STREAMS if quick else MEMORY_STREAMS) // PER_USER)
    from django.db import connections

    database = settings.DATABASES["default"]
    connections.close_all()  # the servers and the sender open their own

    async def bounded() -> list[dict[str, Any]]:
        async with asyncio.timeout(DEADLINE):
            return await measure(store, database, users, quick)

    return asyncio.run(bounded())


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(json.loads(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "send":
        config, user_ids, first, count, out, mode = sys.argv[2:]
        send(json.loads(config), json.loads(user_ids), int(first), int(count), out, mode)
