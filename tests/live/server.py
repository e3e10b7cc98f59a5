"""
A real ASGI server (uvicorn), in a thread or in processes of its own, and a
real HTTP client reading events.

``LiveServer`` runs in this process, so it shares the test database: PostgreSQL
and MariaDB test databases, and SQLite's shared in-memory test database, are
all visible from its threads once the test commits (``transactional_db``).

``ServerProcess`` runs uvicorn as a separate OS process, as a deployment with
several workers does; it sees the test database through
``tests/live/server_settings.py`` (PostgreSQL and MariaDB only).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.test import Client

__all__ = [
    "Event",
    "EventReader",
    "LiveServer",
    "ServerProcess",
    "process_env",
    "server_processes",
    "session_cookies",
]

ROOT = Path(__file__).resolve().parents[2]


class LiveServer:
    """
    uvicorn serving the test project on a free port, started and stopped by the tests.

    ``application`` is Django's ASGI application unless given (a wrapped one).
    """

    def __init__(self, application: Any = None) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(
            application or get_asgi_application(),
            log_level="warning",
            loop="asyncio",
            http="h11",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


def process_env(database: str, pigeonhole_settings: dict[str, Any]) -> dict[str, str]:
    """The environment of a process that runs the test project in this test's world."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.live.server_settings",
        "PIGEONHOLE_SERVER_DB_NAME": database,
        "PIGEONHOLE_SERVER_SETTINGS": json.dumps(pigeonhole_settings),
    }


class ServerProcess:
    """
    uvicorn serving the test project as a separate OS process.

    This process binds the listening socket (a free port, chosen by the kernel)
    and hands it to uvicorn with ``--fd``, so no other program can take the
    port between choosing it and serving on it. The server's output goes to a
    file, shown when it fails to start.
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(128)
        self.port = self.socket.getsockname()[1]
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        """Start the process without waiting for it (several start side by side)."""
        fd = self.socket.fileno()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "django.core.asgi:get_asgi_application",
                "--fd",
                str(fd),
                "--lifespan",
                "off",
                "--log-level",
                "warning",
                "--timeout-graceful-shutdown",
                "1",
            ],
            cwd=ROOT,
            env=self.env,
            pass_fds=[fd],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.socket.close()  # the server holds its own copy

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait until the server answers HTTP; fail with its output if it does not."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"uvicorn exited with {code}:\n{self.output()}")
            try:
                httpx.get(f"{self.url}/messages/count/", timeout=1)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"uvicorn did not answer within {timeout} s:\n{self.output()}"
                    ) from None
                time.sleep(0.05)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-5000:]

    def stop(self) -> None:
        """Stop the process, killing it if it does not stop within a few seconds."""
        process, self.process = self.process, None
        self.socket.close()
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.log.close()


@contextmanager
def server_processes(env: dict[str, str], count: int = 2) -> Iterator[list[ServerProcess]]:
    """Run ``count`` server processes side by side; every one is stopped, however the test ends."""
    servers: list[ServerProcess] = []
    try:
        for _ in range(count):
            servers.append(ServerProcess(env))
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


def session_cookies(user) -> dict[str, str]:
    """Log ``user`` in through Django's sessions and return the cookie a browser would hold."""
    client = Client()
    client.force_login(user)
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


@dataclass
class Event:
    event: str
    data: Any
    id: str | None


class EventReader:
    """Parse Server-Sent Events from a streaming response, as a browser does."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()
        self.comments: list[str] = []
        self.retry: int | None = None

    def next(self) -> Event:
        """Return the next event; comments and retry-only frames are noted and skipped."""
        fields: dict[str, str] = {}
        data: list[str] = []
        for line in self.lines:
            if line == "":
                if data:
                    text = "\n".join(data)
                    return Event(fields.get("event", "message"), json.loads(text), fields.get("id"))
                fields = {}
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "retry":
                self.retry = int(value)
            else:
                fields[name] = value
        raise EOFError("the stream ended")

    def events(self, count: int) -> list[Event]:
        return [self.next() for _ in range(count)]


@contextmanager
def open_stream(
    server: LiveServer | ServerProcess,
    cookies: dict[str, str] | None,
    *,
    last_event_id: str | None = None,
) -> Iterator[EventReader]:
    """Open the stream; the read timeout turns a missing event into a failure, not a hang."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    with (
        httpx.Client(base_url=server.url, cookies=cookies, timeout=5) as client,
        client.stream("GET", "/messages/stream/", headers=headers) as response,
    ):
        yield EventReader(response)


def stream_gone(user: Any, timeout: float = 10.0) -> None:
    """
    Wait for a closed stream's server side to end, as a client that reconnects later would.

    Until then it still reads what is sent, and on SQLite's shared in-memory
    test database a read at the moment of a write makes the write fail.
    """
    from pigeonhole.conf import get_broker

    deadline = time.monotonic() + timeout
    while get_broker().subscriber_count(user.pk):
        assert time.monotonic() < deadline, "the closed stream kept its subscription"
        time.sleep(0.02)
