"""
Wake-ups over Redis pub/sub, for several processes or machines.

Each process holds one subscribed connection (redis-py's asyncio client),
whatever the number of streams it serves; publishing uses a small pool of
ordinary connections, since it happens in sync code after a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from .base import ChannelBroker

try:
    import redis
    import redis.asyncio as aioredis
except ImportError as exc:
    raise ImproperlyConfigured(
        "pigeonhole.brokers.redis.RedisBroker needs redis-py: "
        'pip install "django-pigeonhole[redis]"'
    ) from exc

__all__ = ["RedisBroker"]


class RedisBroker(ChannelBroker):
    """
    Publish and receive wake-ups on one Redis channel.

    ``BROKER_OPTIONS = {"url": "redis://host:6379/0"}``, plus ``channel`` (two
    sites sharing one Redis need different ones), ``ping_interval`` and the
    options of every broker (``queue_size``, ``backoff_initial``, ``backoff_max``).
    """

    url: str = ""
    socket_connect_timeout: float = 5.0
    # Redis channels ignore the database number: sites sharing a server, whatever
    # their databases, must choose different channels.

    options = (*ChannelBroker.options, "url")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if not self.url or not isinstance(self.url, str):
            raise ImproperlyConfigured(
                "RedisBroker needs the address of its Redis server: set "
                "PIGEONHOLE['BROKER_OPTIONS'] = {'url': 'redis://localhost:6379/0'}."
            )
        if urlsplit(self.url).scheme not in ("redis", "rediss", "unix"):
            from ..backends.redis import _redacted

            raise ImproperlyConfigured(
                f"PIGEONHOLE['BROKER_OPTIONS']['url'] = {_redacted(self.url)!r} is not a Redis "
                "URL; use redis://host:port/db, rediss:// for TLS, or unix:///path/to/socket."
            )
        self._client: redis.Redis | None = None

    def where(self) -> str:
        # The backend module imports only after redis-py did, above.
        from ..backends.redis import _redacted

        return _redacted(self.url)

    @property
    def listener_name(self) -> str:
        """The listener connection's ``CLIENT SETNAME``: ``pigeonhole:<channel>``."""
        return f"pigeonhole:{self.channel}"

    def get_client(self) -> redis.Redis:
        """Return the publishing client, built on first use and shared by all threads."""
        if self._client is None:
            with self.publisher_lock:
                if self._client is None:
                    self._client = redis.Redis.from_url(
                        self.url,
                        socket_connect_timeout=self.socket_connect_timeout,
                        socket_timeout=self.socket_connect_timeout,
                        retry_on_timeout=True,
                    )
        return self._client

    def send(self, payload: str) -> None:
        self.get_client().publish(self.channel, payload)

    async def listen(self, deliver: Callable[[str | bytes], None], ready: Callable[[], None]):
        # The name shows in CLIENT LIST, so an operator can tell listeners apart.
        client = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=self.socket_connect_timeout,
            client_name=self.listener_name,
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            ready()
            while True:
                message = await pubsub.get_message(timeout=self.ping_interval)
                if message is None:
                    # Silence: make sure the connection is alive. A dead one
                    # fails the ping, or the next read, and the caller reconnects.
                    async with asyncio.timeout(self.socket_connect_timeout):
                        await pubsub.ping()
                elif message["type"] == "message":
                    deliver(message["data"])
        finally:
            await _quietly(pubsub.aclose())
            await _quietly(client.aclose())

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


async def _quietly(closing: Any) -> None:
    # The connection is already broken; closing it may fail too.
    with contextlib.suppress(Exception):
        await closing
