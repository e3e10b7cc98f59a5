"""
Wake-ups over PostgreSQL LISTEN/NOTIFY, for sites that already run PostgreSQL.

The listener holds its own connection (psycopg 3, async), never one of
Django's: a connection in LISTEN must stay open for as long as the process
serves streams, and Django closes its connections at the end of each request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .base import ChannelBroker

try:
    import psycopg
    from psycopg import sql
except ImportError as exc:
    raise ImproperlyConfigured(
        "pigeonhole.brokers.postgres.PostgresBroker needs psycopg 3: "
        'pip install "django-pigeonhole[postgres]"'
    ) from exc

__all__ = ["PostgresBroker"]


class PostgresBroker(ChannelBroker):
    """
    Publish with ``pg_notify()`` and receive with ``LISTEN`` on one channel.

    ``BROKER_OPTIONS`` may give ``conninfo`` (a libpq connection string or
    URL); without it the broker connects like Django's database ``using``
    (``"default"``). Publisher and listeners must reach the same database:
    notifications do not cross databases. ``channel`` names the channel.
    """

    conninfo: str = ""
    using: str = "default"
    connect_timeout: int = 5
    channel_limit = (63, "PostgreSQL's identifier length")

    options = (*ChannelBroker.options, "conninfo", "using")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if not isinstance(self.conninfo, str):
            raise ImproperlyConfigured(
                "PIGEONHOLE['BROKER_OPTIONS']['conninfo'] must be a libpq connection string, "
                "such as 'postgresql://user@host/dbname'."
            )
        self._conn: psycopg.Connection | None = None

    @property
    def listener_name(self) -> str:
        """The listener connection's ``application_name``."""
        return f"pigeonhole listener {self.channel}"[:63]

    def connection_params(self) -> dict[str, Any]:
        """
        Return psycopg's ``connect()`` arguments.

        Without ``conninfo``, the parameters of Django's connection ``using``
        are reused (read when first needed, never at import time).
        """
        if self.conninfo:
            return {"conninfo": self.conninfo, "connect_timeout": self.connect_timeout}
        from django.db import connections

        connection = connections[self.using]
        if connection.vendor != "postgresql":
            raise ImproperlyConfigured(
                f"PostgresBroker connects like the database {self.using!r}, which is "
                f"{connection.vendor}; set PIGEONHOLE['BROKER_OPTIONS']['conninfo'] to a "
                "PostgreSQL server."
            )
        params = dict(connection.get_connection_params())
        for name in ("cursor_factory", "context", "prepare_threshold", "server_side_binding"):
            params.pop(name, None)  # Django's own adapters, not connection parameters
        params.setdefault("connect_timeout", self.connect_timeout)
        return params

    def send(self, payload: str) -> None:
        # One retry: the kept connection may have died since the last publish
        # (a server restart), which only shows when it is used.
        with self.publisher_lock:
            for attempt in (1, 2):
                conn = self._conn
                try:
                    if conn is None or conn.closed:
                        conn = self._conn = psycopg.connect(
                            **self.connection_params(), autocommit=True
                        )
                    conn.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))
                    return
                except psycopg.OperationalError:
                    self._close_publisher()
                    if attempt == 2:
                        raise

    def _close_publisher(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    async def listen(self, deliver: Callable[[str | bytes], None], ready: Callable[[], None]):
        params = self.connection_params()
        # Shown in pg_stat_activity, so an operator can tell listeners apart.
        params.setdefault("application_name", self.listener_name)
        conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            ready()
            while True:
                got = False
                async for notify in conn.notifies(timeout=self.ping_interval):
                    got = True
                    deliver(notify.payload)
                if not got:
                    # Silence: a query fails at once on a dead connection.
                    async with asyncio.timeout(self.connect_timeout):
                        await conn.execute("SELECT 1")
        finally:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    def close(self) -> None:
        with self.publisher_lock:
            self._close_publisher()
