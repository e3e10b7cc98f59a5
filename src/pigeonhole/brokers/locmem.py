"""
The default broker: wake-ups stay inside this process.

Enough for one server process (``runserver``, one uvicorn worker). A message
sent from another process (a shell, a task worker, a second worker) still
reaches open streams, but only when they next re-read the store: on the next
change in this process or when the browser reconnects. Use ``RedisBroker`` or
``PostgresBroker`` when more than one process serves or sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .base import BaseBroker

__all__ = ["LocMemBroker"]


class LocMemBroker(BaseBroker):
    """Deliver wake-ups to the streams of this process only, with no server."""

    #: Nothing leaves the process: publishers may skip users with no stream here.
    local_only = True

    def send(self, payload: str) -> None:
        self.deliver(payload)

    async def listen(self, deliver: Callable[[str | bytes], None], ready: Callable[[], None]):
        ready()
        await asyncio.Event().wait()  # nothing to connect to; wait to be cancelled
