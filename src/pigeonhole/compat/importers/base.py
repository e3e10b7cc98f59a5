"""
The import machinery: reading old rows in pages, writing pigeonhole rows in batches.

Every imported message carries ``data["imported_from"] = "<library>:<old id>"``.
That is the whole record of provenance: no extra table or column, it survives
in dumps and backups with the message, and a second run skips what it finds
there, so importing is idempotent and can be resumed after an interruption.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q
from django.utils.dateparse import parse_datetime

from ...backends.db import sql
from ...models import FoldedEntry, InboxEntry, Message

__all__ = ["Entry", "ImportResult", "Importer", "Item", "Reader", "Skip"]

PROVENANCE_KEY = "imported_from"
# Column widths of pigeonhole's Message: longer values are cut, not rejected.
_WIDTHS = {"subject": 255, "extra_tags": 255, "url": 2000}


@dataclass
class Entry:
    """One recipient's copy: who, and their read and emailed state."""

    user_id: Any
    read_at: datetime | None = None
    emailed_at: datetime | None = None


@dataclass
class Item:
    """One old message on its way to pigeonhole, with its recipients."""

    source_id: Any
    level: int
    message: str
    created: datetime
    entries: list[Entry]
    subject: str = ""
    extra_tags: str = ""
    url: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    from_user_id: Any = None
    target_content_type_id: int | None = None
    target_object_id: str = ""
    expires: datetime | None = None
    close_timeout: int | None = None
    reason: str = ""
    thread: str | None = None


@dataclass
class Skip:
    """An old row left behind, and why."""

    source_id: Any
    reason: str


@dataclass
class ImportResult:
    read: int = 0
    written: int = 0
    entries: int = 0
    skipped: Counter = field(default_factory=Counter)


class Reader:
    """
    Read one library's tables and yield pages of ``Item`` and ``Skip``.

    Subclasses name their ``tables`` (the first holds the messages, paged by
    its ``id``) and turn each page of rows into items in ``convert()``.
    """

    #: The name given to ``--from``, also the provenance prefix.
    name = ""
    #: Tables that must exist; the first is paged through.
    tables: tuple[str, ...] = ()

    @property
    def app_label(self) -> str:
        """Where the library's install instructions put the app, for error hints: its ``name``."""
        return self.name

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection
        self._columns: dict[str, list[str]] = {}

    # Introspection ------------------------------------------------------------
    def missing_tables(self) -> list[str]:
        existing = set(self.connection.introspection.table_names())
        return [table for table in self.tables if table not in existing]

    def columns(self, table: str) -> list[str]:
        if table not in self._columns:
            with self.connection.cursor() as cursor:
                description = self.connection.introspection.get_table_description(cursor, table)
            self._columns[table] = [column.name for column in description]
        return self._columns[table]

    # Raw reading ----------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def select(self, table: str, wanted: Iterable[str]) -> str:
        """Return ``SELECT <wanted columns that exist> FROM table``: old schemas vary."""
        present = set(self.columns(table))
        quote = self.connection.ops.quote_name
        names = ", ".join(quote(name) for name in wanted if name in present)
        return f"SELECT {names} FROM {quote(table)}"

    def rows_for(self, table: str, wanted: Iterable[str], key: str, ids: Sequence[Any]):
        """Return the rows of ``table`` whose ``key`` is one of ``ids``, in one query."""
        if not ids:
            return []
        quote = self.connection.ops.quote_name
        marks = ", ".join(["%s"] * len(ids))
        return self.query(f"{self.select(table, wanted)} WHERE {quote(key)} IN ({marks})", ids)

    def count(self) -> int:
        quote = self.connection.ops.quote_name
        return self.query(f"SELECT COUNT(*) AS n FROM {quote(self.tables[0])}")[0]["n"]

    def pages(self, size: int) -> Iterator[list[Item | Skip]]:
        table, last = self.tables[0], None
        quote = self.connection.ops.quote_name
        base = self.select(table, self.wanted)
        while True:
            where, params = ("", []) if last is None else (f" WHERE {quote('id')} > %s", [last])
            rows = self.query(f"{base}{where} ORDER BY {quote('id')} LIMIT {int(size)}", params)
            if not rows:
                return
            last = rows[-1]["id"]
            yield self.convert(rows)

    #: Columns of the first table to read; those an old schema lacks are left out.
    wanted: tuple[str, ...] = ("id",)

    def convert(self, rows: list[dict[str, Any]]) -> list[Item | Skip]:
        raise NotImplementedError("subclasses of Reader must provide a convert() method")

    # Values -------------------------------------------------------------------------
    @staticmethod
    def when(value: Any) -> datetime | None:
        """Return an aware datetime from whatever the driver gave (str, naive, aware)."""
        if value is None or value == "":
            return None
        if isinstance(value, str):
            value = parse_datetime(value)
            if value is None:
                return None
        if settings.USE_TZ and value.tzinfo is None:
            # Django stores UTC in databases without time zone support.
            value = value.replace(tzinfo=UTC)
        return value

    @staticmethod
    def json(value: Any) -> Any:
        if isinstance(value, str | bytes):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value


class Importer:
    """
    Write what a ``Reader`` yields into pigeonhole's tables, a batch at a time.

    Each batch is two bulk inserts (messages, then their inbox entries) in one
    transaction, after one query for the users it names.
    """

    def __init__(
        self,
        reader: Reader,
        *,
        batch_size: int = 1000,
        dry_run: bool = False,
        progress: Callable[[ImportResult], None] | None = None,
    ) -> None:
        self.reader = reader
        self.batch_size = batch_size
        self.dry_run = dry_run
        self.progress = progress or (lambda result: None)

    def key(self, source_id: Any) -> str:
        return f"{self.reader.name}:{source_id}"

    def imported_keys(self) -> set[str]:
        """Return the provenance of every message an earlier run imported from this library."""
        prefix = f"{self.reader.name}:"
        found = Message.objects.filter(data__has_key=PROVENANCE_KEY).values_list("data", flat=True)
        return {
            data[PROVENANCE_KEY]
            for data in found.iterator(chunk_size=2000)
            if isinstance(data, dict) and str(data.get(PROVENANCE_KEY, "")).startswith(prefix)
        }

    def run(self) -> ImportResult:
        result = ImportResult()
        done = self.imported_keys()
        for page in self.reader.pages(self.batch_size):
            result.read += len(page)
            items: list[Item] = []
            for item in page:
                if isinstance(item, Skip):
                    result.skipped[item.reason] += 1
                elif self.key(item.source_id) in done:
                    result.skipped["already imported"] += 1
                else:
                    items.append(item)
            items = self._with_known_users(items, result)
            if items and not self.dry_run:
                self._write(items)
            result.written += len(items)
            result.entries += sum(len(item.entries) for item in items)
            self.progress(result)
        return result

    def _with_known_users(self, items: list[Item], result: ImportResult) -> list[Item]:
        wanted = {entry.user_id for item in items for entry in item.entries}
        wanted |= {item.from_user_id for item in items if item.from_user_id is not None}
        manager = get_user_model()._default_manager
        known = set(manager.filter(pk__in=wanted).values_list("pk", flat=True))
        kept = []
        for item in items:
            item.entries = [entry for entry in item.entries if entry.user_id in known]
            if item.from_user_id not in known:
                item.from_user_id = None  # the sender was deleted; the message stays
            if item.entries:
                kept.append(item)
            else:
                result.skipped["recipient no longer exists"] += 1
        return kept

    def _message(self, item: Item) -> Message:
        values = {name: (getattr(item, name) or "")[:width] for name, width in _WIDTHS.items()}
        return Message(
            level=item.level,
            message=item.message,
            data={**item.data, PROVENANCE_KEY: self.key(item.source_id)},
            from_user_id=item.from_user_id,
            target_content_type_id=item.target_content_type_id,
            target_object_id=item.target_object_id or "",
            created=item.created,
            expires=item.expires,
            close_timeout=item.close_timeout,
            reason=item.reason,
            thread=item.thread or "",
            **values,
        )

    def _write(self, items: list[Item]) -> None:
        with transaction.atomic():
            messages = Message.objects.bulk_create([self._message(item) for item in items])
            entries = [
                (
                    item.thread,
                    InboxEntry(
                        user_id=entry.user_id,
                        message_id=message.pk,
                        created=message.created,
                        read_at=entry.read_at,
                        emailed_at=entry.emailed_at,
                        expires=message.expires,
                        # Outside any thread until _rethread() picks each thread's row.
                        thread=None,
                    ),
                )
                for item, message in zip(items, messages, strict=True)
                for entry in item.entries
            ]
            InboxEntry.objects.bulk_create([entry for _, entry in entries])
            # Lock each thread's row before reading its rows, as a send does
            # (sql.thread_lock()): a send into the thread meanwhile waits, or
            # the import waits for it. In key order, so two imports cannot
            # each hold a lock the other waits for.
            newest: dict[str, int] = {}
            for item, message in zip(items, messages, strict=True):
                if item.thread is not None and item.entries:
                    newest[item.thread] = max(newest.get(item.thread, 0), message.pk)
            connection = connections[router.db_for_write(InboxEntry)]
            with connection.cursor() as cursor:
                for thread in sorted(newest):
                    cursor.execute(*sql.thread_lock(connection, thread, newest[thread]))
            threads: dict[tuple[Any, str], list[int]] = {}
            for thread, entry in entries:
                if thread is not None:
                    threads.setdefault((entry.user_id, thread), []).append(entry.pk)
            self._rethread(threads)

    @staticmethod
    def _rethread(threads: dict[tuple[Any, str], list[int]]) -> None:
        """
        Make the newest entry of each user's thread its row, as a send would have.

        ``threads`` maps each user and thread to the ids of the entries just
        written for it. The older entries, and the row the thread had, move
        to the thread's history. The row's ``count`` is the messages since the
        last read one and its ``senders`` the three most recent distinct ones.
        A few queries per user and thread: an import runs once, offline.
        """
        kept = [f.attname for f in FoldedEntry._meta.concrete_fields if f.attname != "thread"]
        for (user_id, thread), ids in threads.items():
            mine = InboxEntry.objects.filter(Q(user_id=user_id, thread=thread) | Q(id__in=ids))
            history = FoldedEntry.objects.filter(user_id=user_id, thread=thread)
            columns = ("id", "read_at", "message__from_user_id")
            rows = sorted([*history.values_list(*columns), *mine.values_list(*columns)])
            count, previous_read = 0, True
            for _, read_at, _ in rows:
                count = 1 if previous_read else count + 1
                previous_read = read_at is not None
            senders = list(dict.fromkeys(s for *_, s in reversed(rows) if s is not None))[:3]
            older = mine.exclude(id=rows[-1][0])
            FoldedEntry.objects.bulk_create(
                FoldedEntry(**values, thread=thread) for values in older.values(*kept)
            )
            older.delete()
            mine.filter(id=rows[-1][0]).update(
                thread=thread,
                count=count,
                senders="".join(f",{sender}" for sender in senders) + "," if senders else "",
            )
