"""
A real ASGI server (uvicorn) in a thread, and a real HTTP client reading events.

The server runs in this process, so it shares the test database: PostgreSQL
and MariaDB test databases, and SQLite's shared in-memory test database, are
all visible from its threads once the test commits (``transactional_db``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.test import Client

__all__ = ["Event", "EventReader", "LiveServer", "session_cookies"]


class LiveServer:
    """uvicorn serving the test project on a free port, started and stopped by the tests."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(
            get_asgi_application(),
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
    server: LiveServer, cookies: dict[str, str] | None, *, last_event_id: str | None = None
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
