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
"""

from __future__ import annotations

import gc
import time
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
    if not (sent.recipient_count == found == people == n):
        raise AssertionError(
            f"send() to a {form} of {n} users reported {sent.recipient_count} recipients and "
            f"created {found} entries for {people} users"
        )


def redis_info() -> dict[str, float]:
    """Return the Redis server's memory in use and CPU seconds spent so far."""
    from pigeonhole.conf import get_backend

    info = redis_info_of(get_backend().get_client())
    return {
        "memory": float(info["used_memory"]),
        "cpu": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
    }


def timed_send(store: str, to: Any, n: int, form: str) -> dict[str, float]:
    """
    Return one send's seconds, peak bytes added, CPU seconds (this process and,
    for Redis, the server) and, for Redis, the server's memory it added.
    """
    import pigeonhole

    gc.collect()
    gc.disable()
    try:
        server = redis_info() if store in REDIS_STORES else {"memory": 0.0, "cpu": 0.0}
        before = reset_peak_rss()
        cpu = time.process_time()
        start = time.perf_counter()
        sent = pigeonhole.send(to, "Benchmark message", level=pigeonhole.PERSISTENT_INFO)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        grown = peak_rss() - before
        after = redis_info() if store in REDIS_STORES else server
    finally:
        gc.enable()
    check_and_clean(store, sent, n, form)
    return {
        "seconds": elapsed,
        "grown": grown,
        "cpu": cpu,
        "server_cpu": after["cpu"] - server["cpu"],
        "memory": after["memory"] - server["memory"],
    }


def traced_send(store: str, to: Any, n: int, form: str) -> int:
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
    check_and_clean(store, sent, n, form)
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
        timed_send(store, recipients["queryset"], n, "queryset")  # warm-up, not reported
        for form in FORMS:
            runs = [timed_send(store, recipients[form], n, form) for _ in range(repeat)]
            middle = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
            seconds = middle["seconds"]
            target = REDIS_TARGET if store in REDIS_STORES else TARGETS[form]
            cpu = f"; CPU {middle['cpu']:.3f} s here"
            if store in REDIS_STORES:
                cpu += f", {middle['server_cpu']:.3f} s in Redis"
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
                traced = traced_send(store, recipients[form], n, form) / 2**20
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
        del recipients["list"]
    return rows
