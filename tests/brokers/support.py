"""
Helpers for the broker tests: real servers, never a mock.

``pg_conninfo()`` names the PostgreSQL server the run uses (the one ``dev.py``
probes), skipping without one and failing under CI, as ``redis_url()`` does.
``run()`` drives one scenario on a fresh event loop, as a stream would see it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Coroutine
from typing import Any

import pytest

__all__ = ["next_wakeups", "pg_conninfo", "run", "unique_channel"]


def unique_channel(label: str = "test") -> str:
    """A channel nobody else listens on, so runs sharing a server never cross."""
    return f"pigeonhole_{label}_{uuid.uuid4().hex[:12]}"


def pg_conninfo() -> str:
    """Return a libpq connection string for the test server; skip (or fail under CI) without it."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - the dev extra installs it
        pytest.skip("psycopg is not installed")
    host = os.environ.get("PIGEONHOLE_PG_HOST", "127.0.0.1")
    port = os.environ.get("PIGEONHOLE_PG_PORT", "5432")
    user = os.environ.get("PIGEONHOLE_PG_USER", "postgres")
    conninfo = f"host={host} port={port} user={user} dbname=test"
    try:
        psycopg.connect(conninfo, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL at {host}:{port} is not reachable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI a skipped broker is a failure.")
        pytest.skip(reason)
    return conninfo


def run(scenario: Coroutine[Any, Any, Any], timeout: float = 15) -> Any:
    """Run ``scenario`` on a new loop, failing it (not hanging) after ``timeout`` seconds."""

    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await scenario

    return asyncio.run(bounded())


async def next_wakeups(subscription, timeout: float = 5) -> list:
    """Return the next batch of wake-ups as ``(event, ids)`` pairs."""
    async with asyncio.timeout(timeout):
        batch = await subscription.get()
    return [(w.event, w.ids) for w in batch]
