"""
Reads at scale: one user's unread count and first unread page in a big table.

The inbox table is filled with raw SQL (not timed) to 100,000 and then 1,000,000
entries over 10,000 users, half of them read. The measured user always holds the
same 100 entries (50 unread), so any growth in the figures comes from the table's
size, not from that user's inbox. Each figure is the median of 50 calls through
the backend, the calls every page with an unread badge makes.
"""

from __future__ import annotations

from typing import Any

from harness import log, median_ms, row

NAME = "reads"
SIZES = (100_000, 1_000_000)
USERS = 10_000
MESSAGES = 1_000  # contents the entries point at, as if each was sent to many users
OWN = 100  # the measured user's entries, half unread
CALLS = 50
#: "Flat": ten times the rows may cost at most this much more time.
FLAT = 1.5
TARGETS_MS = {
    "sqlite": {"count": 0.2, "page": 0.5},
    "postgres": {"count": 0.3, "page": 0.8},
}


def numbers_sql(vendor: str, n: int) -> str:
    """A row source of ``i`` = 0 .. n-1."""
    if vendor == "postgresql":
        return f"SELECT generate_series(0, {n - 1}) AS i"
    return (
        f"WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {n - 1}) "
        "SELECT i FROM seq"
    )


def fill(n: int, first_user: int, last_user: int, first_message: int, start: int) -> None:
    """
    Add entries ``start`` .. ``n - 1`` for every user but the measured one.

    Entry i goes to user ``i mod (users - 1)`` and content ``i mod MESSAGES``; ids
    rise with i, so every user's entries are spread over the whole table, the
    worst case for an index that is not on (user, id).
    """
    from django.db import connection

    others = last_user - first_user  # users after the measured one
    now = "CURRENT_TIMESTAMP"
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO pigeonhole_inboxentry (user_id, message_id, created, read_at) "
            f"SELECT {first_user + 1} + (i % {others}), {first_message} + (i % {MESSAGES}), "
            f"{now}, CASE WHEN (i / {others}) % 2 = 0 THEN {now} ELSE NULL END "
            f"FROM ({numbers_sql(connection.vendor, n - start)}) AS seq"
        )


def add_own(user_id: int, first_message: int) -> None:
    """Give the measured user their 100 entries, 50 read, before anyone else's."""
    from django.db import connection

    with connection.cursor() as cursor:
        for i in range(OWN):
            cursor.execute(
                "INSERT INTO pigeonhole_inboxentry (user_id, message_id, created, read_at) "
                "VALUES (%s, %s, CURRENT_TIMESTAMP, "
                + ("CURRENT_TIMESTAMP" if i % 2 else "NULL")
                + ")",
                [user_id, first_message + i % MESSAGES],
            )


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def run(store: str, quick: bool = False) -> list[dict[str, Any]]:
    if store == "redis":
        return []  # the count and page on Redis are O(log n) index reads; see docs
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    import pigeonhole
    from pigeonhole.conf import get_backend
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
    measured = pks[0]
    backend = get_backend()
    rows, filled = [], 0
    for n in sizes:
        with transaction.atomic():
            if filled == 0:
                add_own(measured, first_message)
            fill(n - OWN, pks[0], pks[-1], first_message, filled)
        filled = n - OWN
        analyze()
        assert backend.count(measured) == OWN // 2, backend.count(measured)
        page = backend.list(measured, state="unread", limit=20)
        assert len(page) == 20, len(page)
        count_ms, _ = median_ms(lambda: backend.count(measured), CALLS)
        page_ms, _ = median_ms(lambda: backend.list(measured, state="unread", limit=20), CALLS)
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM pigeonhole_inboxentry")
            total = cursor.fetchone()[0]
        log(f"[{store}] reads at {total:,} entries: count {count_ms:.3f} ms, page {page_ms:.3f} ms")
        targets = TARGETS_MS.get(store, {})
        rows += [
            row(
                NAME,
                store,
                f"unread count, {total:,} entries",
                count_ms,
                "ms",
                target=targets.get("count"),
                at_least=False,
                detail=f"median of {CALLS}",
            ),
            row(
                NAME,
                store,
                f"first page of 20 unread, {total:,} entries",
                page_ms,
                "ms",
                target=targets.get("page"),
                at_least=False,
                detail=f"median of {CALLS}",
            ),
        ]
    if len(sizes) == 2:
        for kind in ("unread count", "first page of 20 unread"):
            small, big = (r for r in rows if r["metric"].startswith(kind))
            rows.append(
                row(
                    NAME,
                    store,
                    f"{kind}: time at {sizes[1]:,} / at {sizes[0]:,} entries",
                    big["value"] / small["value"],
                    "x",
                    target=FLAT,
                    at_least=False,
                    detail="flat means the table's size does not matter",
                )
            )
    return rows
