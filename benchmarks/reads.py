"""
Reads at scale: one user's unread count and first unread page in a big store.

The store is filled (not timed) to 100,000 and then 1,000,000 entries over
10,000 users, twice: once with plain entries, once with threaded ones, where
most entries were folded into their thread's row as a busy site's inboxes
are. The measured user always holds the same 100 rows, 50 of them unread, so
any growth in the figures comes from the store's size, not from that user's
inbox. Each figure is the median of 50 calls through the backend, the calls
every page with an unread badge makes.

The database stores are filled with raw SQL, ``INSERT ... SELECT`` over a row
source, as fast as the database writes; Redis, whose layout only its scripts
know, through the backend's own sends, a round of 9,999 recipients at a time.
"""

from __future__ import annotations

from typing import Any

from harness import log, median_ms, row

NAME = "reads"
SIZES = (100_000, 1_000_000)
USERS = 10_000
MESSAGES = 1_000  # contents the entries point at, as if each was sent to many users
OWN = 100  # the measured user's rows, half unread
CALLS = 50
#: "Flat": ten times the rows may cost at most this much more time.
FLAT = 1.5
TARGETS_MS = {
    "sqlite": {"count": 0.2, "page": 0.5},
    "sqlite-wal": {"count": 0.2, "page": 0.5},
    "postgres": {"count": 0.3, "page": 0.8},
    "redis": {"count": 0.3, "page": 0.8},
}
#: The threaded layout: each other user's entries go round this many threads, so at
#: 1,000,000 entries each thread holds 20 messages, 19 of them folded.
THREADS = 5
#: Messages in each of the measured user's threads: 100 rows over 1,000 entries.
OWN_DEPTH = 10


def numbers_sql(vendor: str, n: int) -> str:
    """A row source of ``i`` = 0 .. n-1."""
    if vendor == "postgresql":
        return f"SELECT generate_series(0, {n - 1}) AS i"
    return (
        f"WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {n - 1}) "
        "SELECT i FROM seq"
    )


class Fill:
    """
    Grow one store to a number of entries in one layout, and empty it again.

    ``own()`` gives the measured user their rows, once, before anyone else's;
    ``grow(n)`` adds the others' entries up to ``n`` in all. Entry i (counted
    from the first of the others') goes to user ``i mod 9,999``; in the
    threaded layout round ``i div 9,999`` goes to thread ``round mod THREADS``.
    """

    def __init__(self, threaded: bool, measured: int, others: list[int], first_message: int):
        self.threaded = threaded
        self.measured = measured
        self.others = others
        self.first_message = first_message
        self.filled = 0  # the others' entries so far

    def own_count(self) -> int:
        return OWN * OWN_DEPTH if self.threaded else OWN

    def own(self) -> None:
        """Give the measured user their rows, half of them read, through the backend."""
        from django.utils import timezone

        import pigeonhole
        from pigeonhole.conf import get_backend
        from pigeonhole.message import NewMessage

        backend = get_backend()
        rows = []
        for depth in range(OWN_DEPTH if self.threaded else 1):
            for i in range(OWN):
                message = NewMessage(
                    level=pigeonhole.PERSISTENT_INFO,
                    message=f"own {i}.{depth}",
                    created=timezone.now(),
                    thread=f"own-{i}" if self.threaded else None,
                )
                stored = backend.add(message, self.measured)
                if depth == OWN_DEPTH - 1 or not self.threaded:
                    rows.append(stored)
        backend.mark_read(self.measured, [entry.id for i, entry in enumerate(rows) if i % 2])

    def grow(self, n: int) -> None:
        raise NotImplementedError

    def total(self) -> int:
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError


class SqlFill(Fill):
    """Fill the inbox table with ``INSERT ... SELECT``; fold threads with two ``UPDATE``s."""

    def grow(self, n: int) -> None:
        from django.db import connection, transaction

        others = len(self.others)
        start, count = self.filled, n - self.own_count() - self.filled
        first_user = self.others[0]  # the others' ids are consecutive
        now = "CURRENT_TIMESTAMP"
        i = f"(seq.i + {start})"
        columns = "user_id, message_id, created, read_at"
        values = (
            f"{first_user} + ({i} % {others}), {self.first_message} + ({i} % {MESSAGES}), "
            f"{now}, CASE WHEN ({i} / {others}) % 2 = 0 THEN {now} ELSE NULL END"
        )
        if self.threaded:
            # Written outside any thread, the key kept in ``senders`` meanwhile, so
            # the unique (thread, user) row index holds while the statements below
            # make each thread's newest entry its row and move the rest to the
            # history table, as sends would have.
            columns += ", senders"
            values += f", 'thread-' || CAST((({i} / {others}) % {THREADS}) AS VARCHAR(10))"
        kept = (
            "id, user_id, message_id, created, read_at, archived_at, emailed_at, expires, "
            "seen_at, saved_at, count"
        )
        others_only = f"user_id <> {int(self.measured)}"
        newest = (
            f"SELECT MAX(id) FROM pigeonhole_foldedentry WHERE {others_only} "
            "GROUP BY user_id, thread"
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO pigeonhole_inboxentry ({columns}) SELECT {values} "
                f"FROM ({numbers_sql(connection.vendor, count)}) AS seq"
            )
            if self.threaded:
                for statement in (
                    f"INSERT INTO pigeonhole_foldedentry ({kept}, thread, senders) "
                    f"SELECT {kept}, senders, '' FROM pigeonhole_inboxentry "
                    f"WHERE {others_only} AND thread IS NULL",
                    f"INSERT INTO pigeonhole_foldedentry ({kept}, thread, senders) "
                    f"SELECT {kept}, thread, senders FROM pigeonhole_inboxentry "
                    f"WHERE {others_only} AND thread IS NOT NULL",
                    f"DELETE FROM pigeonhole_inboxentry WHERE {others_only}",
                    f"INSERT INTO pigeonhole_inboxentry ({kept}, thread, senders) "
                    f"SELECT {kept}, thread, senders FROM pigeonhole_foldedentry "
                    f"WHERE id IN ({newest})",
                    f"DELETE FROM pigeonhole_foldedentry WHERE id IN "
                    f"(SELECT id FROM pigeonhole_inboxentry WHERE {others_only})",
                ):
                    cursor.execute(statement)
        self.filled += count
        # A site's table is read in its steady state, not straight after a bulk
        # load: vacuumed here, autovacuum has no new rows to set to work on while
        # the reads are timed.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")

    def total(self) -> int:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT COUNT(*) FROM pigeonhole_inboxentry) "
                "+ (SELECT COUNT(*) FROM pigeonhole_foldedentry)"
            )
            return cursor.fetchone()[0]

    def clear(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("TRUNCATE pigeonhole_inboxentry, pigeonhole_foldedentry")
            else:
                cursor.execute("DELETE FROM pigeonhole_inboxentry")
                cursor.execute("DELETE FROM pigeonhole_foldedentry")
                cursor.execute("VACUUM")


class RedisFill(Fill):
    """Fill Redis with the backend's sends: one round of the others at a time."""

    def grow(self, n: int) -> None:
        from django.contrib.auth import get_user_model
        from django.utils import timezone

        import pigeonhole
        from pigeonhole.backends.base import Recipients
        from pigeonhole.conf import get_backend
        from pigeonhole.message import NewMessage

        backend = get_backend()
        users = get_user_model().objects.all()
        others = len(self.others)
        wanted = n - self.own_count()
        while self.filled < wanted:
            round_, offset = divmod(self.filled, others)
            take = min(others - offset, wanted - self.filled)
            low, high = self.others[offset], self.others[offset + take - 1]
            message = NewMessage(
                level=pigeonhole.PERSISTENT_INFO,
                message=f"round {round_}",
                created=timezone.now(),
                thread=f"thread-{round_ % THREADS}" if self.threaded else None,
            )
            backend.send(message, Recipients(queryset=users.filter(pk__range=(low, high))))
            self.filled += take

    def total(self) -> int:
        return self.own_count() + self.filled

    def clear(self) -> None:
        from harness import drop_redis_keys

        drop_redis_keys()


def measure(store: str, layout: str, fill: Fill, sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    from pigeonhole.conf import get_backend

    backend = get_backend()
    measured = fill.measured
    fill.own()
    label = ", threaded rows" if layout == "threaded" else ""
    detail = f"median of {CALLS}"
    if layout == "threaded":
        detail += f"; {OWN} rows over {OWN * OWN_DEPTH} entries, the others' in {THREADS} threads"
    rows = []
    for n in sizes:
        fill.grow(n)
        total = fill.total()
        assert total == n, (total, n)
        assert backend.count(measured) == OWN // 2, backend.count(measured)
        assert len(backend.list(measured, state="all", limit=OWN + 1)) == OWN
        page = backend.list(measured, state="unread", limit=20)
        assert len(page) == 20, len(page)
        count_ms, _ = median_ms(lambda: backend.count(measured), CALLS)
        page_ms, _ = median_ms(lambda: backend.list(measured, state="unread", limit=20), CALLS)
        log(f"[{store}] {layout} reads at {n:,}: count {count_ms:.3f} ms, page {page_ms:.3f} ms")
        targets = TARGETS_MS.get(store, {})
        rows += [
            row(
                NAME,
                store,
                f"unread count, {n:,} entries{label}",
                count_ms,
                "ms",
                target=targets.get("count"),
                at_least=False,
                detail=detail,
            ),
            row(
                NAME,
                store,
                f"first page of 20 unread, {n:,} entries{label}",
                page_ms,
                "ms",
                target=targets.get("page"),
                at_least=False,
                detail=detail,
            ),
        ]
    if len(sizes) == 2:
        for kind in ("unread count", "first page of 20 unread"):
            small, big = (r for r in rows if r["metric"].startswith(kind))
            rows.append(
                row(
                    NAME,
                    store,
                    f"{kind}{label}: time at {sizes[1]:,} / at {sizes[0]:,} entries",
                    big["value"] / small["value"],
                    "x",
                    target=FLAT,
                    at_least=False,
                    detail="flat means the store's size does not matter",
                )
            )
    return rows


def run(store: str, quick: bool = False) -> list[dict[str, Any]]:
    from django.contrib.auth import get_user_model

    import pigeonhole
    from pigeonhole.models import Message

    sizes = (10_000, 100_000) if quick else SIZES
    User = get_user_model()
    User.objects.bulk_create(
        (User(username=f"reader{i:06d}", password="!") for i in range(USERS)), batch_size=5000
    )
    pks = list(User.objects.order_by("pk").values_list("pk", flat=True))
    Message.objects.bulk_create(
        (Message(level=pigeonhole.PERSISTENT_INFO, message=f"m{i}") for i in range(MESSAGES)),
        batch_size=1000,
    )
    first_message = Message.objects.order_by("pk").values_list("pk", flat=True)[0]
    kind = RedisFill if store == "redis" else SqlFill
    rows = []
    for layout in ("plain", "threaded"):
        fill = kind(layout == "threaded", pks[0], pks[1:], first_message)
        rows += measure(store, layout, fill, sizes)
        fill.clear()
    return rows
