"""
Fan-out: one ``send()`` to 10,000 and 100,000 existing users.

Recipients come as a QuerySet, a Group and a Python list of users (loaded before
the clock starts, as a caller would hold them). Every timed send is checked
afterwards (exactly N entries for N distinct users) and then removed, so a broken
send cannot pass for a fast one and each run starts from the same tables.
The peak memory of a 100,000-recipient send shows whether it builds model
instances per recipient. Each speed comes with the CPU time it cost, this
process's and (for Redis) the server's. On Redis the memory one stored entry
costs is reported too: ``used_memory`` before and after a 100,000-recipient
send, divided by the entries it wrote.

The same sends then go into a thread where every recipient already has a
row, the busy case of a thread: each send folds each recipient's row into
the new entry (a new row on top, carrying the count and senders over).
Each is checked too: one row per recipient in the thread, showing this
message with the count of messages sent into it so far.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from harness import (
    REDIS_STORES,
    create_users,
    drop_redis_keys,
    log,
    peak_rss,
    redis_info_of,
    reset_peak_rss,
    row,
)

NAME = "fan-out"
SIZES = (10_000, 100_000)
FORMS = ("queryset", "group", "list")
#: Recipients per second: QuerySets and Groups are copied by the database itself.
TARGETS = {"queryset": 200_000, "group": 200_000, "list": 100_000}
REDIS_TARGET = 250_000
#: Forms sent into an existing thread, and their targets in recipients per second.
THREADED_FORMS = ("queryset", "list")
THREADED_TARGETS = {"postgres": 100_000}
THREAD = "bench-thread"
#: Peak memory a send may add, whatever the recipient count (for a list, beyond
#: the list itself, which the caller holds already).
MEMORY_TARGET_MB = 20.0


def check_and_clean(store: str, sent: Any, n: int, form: str) -> None:
    """Fail loudly unless the send made exactly ``n`` entries for ``n`` users; remove them."""
    from pigeonhole.conf import get_backend
    from pigeonhole.models import InboxEntry, Message

    if store in REDIS_STORES:
        from pigeonhole.backends.redis.keys import GROUPS

        backend = get_backend()
        # Each group's copy of the content counts the entries it has there.
        pipe = backend.get_client().pipeline(transaction=False)
        for group in range(GROUPS):
            pipe.hget(backend.keys.content(group, sent.id), "refs")
        found = sum(int(refs or 0) for refs in pipe.execute())
        people = found  # the store keeps one entry per user and send
        drop_redis_keys()
    else:
        entries = InboxEntry.objects.filter(message_id=sent.pk)
        found = entries.count()
        people = entries.values("user_id").distinct().count()
        entries.delete()
        Message.objects.filter(pk=sent.pk).delete()
        vacuum()
    if not (sent.recipient_count == found == people == n):
        raise AssertionError(
            f"send() to a {form} of {n} users reported {sent.recipient_count} recipients and "
            f"created {found} entries for {people} users"
        )


def vacuum() -> None:
    """
    Clear what a clean-up deleted, as autovacuum would between a site's sends.

    Each timed send must start from the same tables: without it, every send's
    deleted entries stayed in the inbox table and its indexes until autovacuum
    came round, and the last runs read through about 2,000,000 of them, twenty
    times the live rows, where autovacuum acts at a fifth on a site.
    """
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM")


def redis_info() -> dict[str, float]:
    """Return the Redis server's memory in use and CPU seconds spent so far."""
    from pigeonhole.conf import get_backend

    info = redis_info_of(get_backend().get_client())
    return {
        "memory": float(info["used_memory"]),
        "cpu": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
    }


def timed_send(
    store: str, to: Any, check: Callable[[Any], None], thread: str | None = None
) -> dict[str, float]:
    """
    Return one send's seconds, peak bytes added, CPU seconds (this process and,
    for Redis, the server) and, for Redis, the server's memory it added.

    ``check(sent)`` runs afterwards, untimed, and raises if the send went wrong.
    """
    import pigeonhole

    gc.collect()
    gc.disable()
    try:
        server = redis_info() if store in REDIS_STORES else {"memory": 0.0, "cpu": 0.0}
        before = reset_peak_rss()
        cpu = time.process_time()
        start = time.perf_counter()
        sent = pigeonhole.send(
            to, "Benchmark message", level=pigeonhole.PERSISTENT_INFO, thread=thread
        )
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        grown = peak_rss() - before
        after = redis_info() if store in REDIS_STORES else server
    finally:
        gc.enable()
    check(sent)
    return {
        "seconds": elapsed,
        "grown": grown,
        "cpu": cpu,
        "server_cpu": after["cpu"] - server["cpu"],
        "memory": after["memory"] - server["memory"],
    }


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    return sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]


def cpu_detail(store: str, run: dict[str, float]) -> str:
    """The CPU time a send cost, for the detail column."""
    cpu = f"; CPU {run['cpu']:.3f} s here"
    if store in REDIS_STORES:
        cpu += f", {run['server_cpu']:.3f} s in Redis"
    return cpu


def traced_send(to: Any, check: Callable[[Any], None]) -> int:
    """
    Return the peak bytes Python allocated during one send, untimed.

    RSS misses memory that the process freed earlier and reuses; tracemalloc
    counts every allocation, so the two together show what a send holds at once.
    """
    import tracemalloc

    import pigeonhole

    gc.collect()
    tracemalloc.start()
    try:
        sent = pigeonhole.send(to, "Benchmark message", level=pigeonhole.PERSISTENT_INFO)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    check(sent)
    return peak


def run(store: str, quick: bool = False) -> list[dict[str, Any]]:
    from django.contrib.auth import get_user_model
    from django.db import connection

    User = get_user_model()
    sizes = (2_000,) if quick else SIZES
    start = time.perf_counter()
    create_users(max(sizes), prefix="fan")
    log(f"[{store}] fan-out: created {max(sizes):,} users in {time.perf_counter() - start:.1f} s")
    from django.contrib.auth.models import Group

    pks = list(User.objects.order_by("pk").values_list("pk", flat=True))
    rows = []
    for n in sizes:
        low, high = pks[0], pks[n - 1]
        group = Group.objects.create(name=f"fan-{n}")
        Membership = User.groups.through
        Membership.objects.bulk_create(
            (Membership(user_id=pk, group_id=group.pk) for pk in pks[:n]), batch_size=5000
        )
        # A site's tables have statistics (autovacuum keeps PostgreSQL's); freshly
        # loaded ones have none, and the planner then guesses a few hundred users.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        recipients = {
            "queryset": User.objects.filter(pk__range=(low, high), is_active=True),
            "group": group,
            "list": list(User.objects.filter(pk__range=(low, high))),
        }
        repeat = 5 if n <= 10_000 else 3

        def cleaned(form: str, n: int = n) -> Callable[[Any], None]:
            return lambda sent: check_and_clean(store, sent, n, form)

        timed_send(store, recipients["queryset"], cleaned("queryset"))  # warm-up, not reported
        for form in FORMS:
            runs = [timed_send(store, recipients[form], cleaned(form)) for _ in range(repeat)]
            middle = median_run(runs)
            seconds = middle["seconds"]
            target = REDIS_TARGET if store in REDIS_STORES else TARGETS[form]
            cpu = cpu_detail(store, middle)
            rows.append(
                row(
                    NAME,
                    store,
                    f"{form}, {n:,} recipients",
                    n / seconds,
                    "recipients/s",
                    target=target,
                    detail=f"median {seconds:.4f} s of {repeat}{cpu}",
                )
            )
            log(f"[{store}] {form} {n:,}: {n / seconds:,.0f}/s")
            if store in REDIS_STORES and n == max(sizes) and form == "queryset":
                # The smallest delta of the runs: another client of a shared
                # server can only add to it.
                per_entry = min(run["memory"] for run in runs) / n
                rows.append(
                    row(
                        "memory",
                        store,
                        f"Redis memory per stored entry ({n:,}-recipient send)",
                        per_entry,
                        "bytes",
                        detail="INFO used_memory after the send less before, / entries; "
                        "least of the runs",
                    )
                )
            if n == max(sizes):
                grown = max(run["grown"] for run in runs) / 2**20
                traced = traced_send(recipients[form], cleaned(form)) / 2**20
                rows.append(
                    row(
                        "memory",
                        store,
                        f"send() to a {form} of {n:,}: peak RSS added",
                        grown,
                        "MB",
                        target=MEMORY_TARGET_MB,
                        at_least=False,
                        detail=f"Python allocations peak {traced:.1f} MB (tracemalloc)"
                        + ("; the list itself was loaded before" if form == "list" else ""),
                    )
                )
        for form in THREADED_FORMS:
            sample = [low, pks[n // 2], high]
            rows.append(threaded(store, recipients[form], n, form, repeat, sample))
        del recipients["list"]
    return rows


def threaded(
    store: str, to: Any, n: int, form: str, repeat: int, sample: list[Any]
) -> dict[str, Any]:
    """Send into a thread where every recipient has a row already; return the figure."""
    import pigeonhole

    pigeonhole.send(to, "First of the thread", level=pigeonhole.PERSISTENT_INFO, thread=THREAD)
    if store not in REDIS_STORES:
        # The thread's rows were there before, and so were statistics that know
        # them: on a site autovacuum takes them after this many new rows.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    def checked(k: int) -> Callable[[Any], None]:
        return lambda sent: check_thread(store, sent, n, k, sample)

    runs = [timed_send(store, to, checked(k), thread=THREAD) for k in range(2, repeat + 2)]
    clean_thread(store)
    middle = median_run(runs)
    seconds = middle["seconds"]
    log(f"[{store}] threaded {form} {n:,}: {n / seconds:,.0f}/s")
    return row(
        NAME,
        store,
        f"{form}, {n:,} recipients into existing threads",
        n / seconds,
        "recipients/s",
        target=THREADED_TARGETS.get(store),
        detail=f"median {seconds:.4f} s of {repeat}, each folding every recipient's row"
        + cpu_detail(store, middle),
    )


def check_thread(store: str, sent: Any, n: int, k: int, sample: list[Any]) -> None:
    """
    Fail loudly unless the ``k``-th send into the thread left one row per recipient.

    Each row must show this message and count ``k`` messages. On a database
    every row is checked; on Redis the number of entries and, as everywhere,
    the rows of the ``sample`` users through the backend.
    """
    from pigeonhole.conf import get_backend

    backend = get_backend()
    problems = []
    if sent.recipient_count != n:
        problems.append(f"{sent.recipient_count} recipients reported")
    if store in REDIS_STORES:
        from harness import REDIS_PREFIX

        client = backend.get_client()
        found = sum(1 for _ in client.scan_iter(f"{REDIS_PREFIX}:{{g*}}:e:*", count=10_000))
        if found != k * n:
            problems.append(f"{found} entries in all, not {k * n}")
    else:
        from django.db.models import Count, Q

        from pigeonhole.models import FoldedEntry, InboxEntry

        rows = InboxEntry.objects.filter(thread=THREAD).aggregate(
            rows=Count("id"),
            users=Count("user_id", distinct=True),
            newest=Count("id", filter=Q(message_id=sent.id, count=k)),
        )
        entries = rows["rows"] + FoldedEntry.objects.filter(thread=THREAD).count()
        if not (rows["rows"] == rows["users"] == rows["newest"] == n and entries == k * n):
            problems.append(f"thread rows {rows}, {entries} entries in all")
    for user_id in sample:
        shown = [(e.message_id, e.count) for e in backend.list(user_id, state="all", limit=10)]
        if shown != [(sent.id, k)]:
            problems.append(f"user {user_id}'s inbox shows (content, count) {shown}")
    if problems:
        raise AssertionError(f"send {k} into a thread of {n} users: " + "; ".join(problems))


def clean_thread(store: str) -> None:
    """Remove the thread's entries and contents, so the next run starts from the same tables."""
    if store in REDIS_STORES:
        drop_redis_keys()
        return
    from pigeonhole.models import FoldedEntry, InboxEntry, Message, Thread

    InboxEntry.objects.filter(thread=THREAD).delete()
    FoldedEntry.objects.filter(thread=THREAD).delete()
    Message.objects.filter(thread=THREAD).delete()
    Thread.objects.filter(thread=THREAD).delete()
    vacuum()
