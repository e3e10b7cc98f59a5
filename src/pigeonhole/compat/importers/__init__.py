"""
Readers of the older libraries' tables, for ``manage.py pigeonhole_import``.

Each reader pages through its library's tables with plain SQL, so the old
app need not be installed (most no longer install on current Django), and
yields pigeonhole messages to write; ``base.Importer`` writes them in batches.
"""

from __future__ import annotations

from .base import Importer, Reader
from .drf_messages import DrfMessagesReader
from .messages_extends import MessagesExtendsReader
from .monitio import MonitioReader
from .notifications import NotificationsReader
from .stored_messages import StoredMessagesReader

__all__ = ["READERS", "Importer", "Reader"]

READERS: dict[str, type[Reader]] = {
    "stored_messages": StoredMessagesReader,
    "messages_extends": MessagesExtendsReader,
    "drf_messages": DrfMessagesReader,
    "monitio": MonitioReader,
    "notifications": NotificationsReader,
}
