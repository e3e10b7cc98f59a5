#!/usr/bin/env python
"""
Benchmark ``pigeonhole.send()`` fanning one message out to many existing users.

    python benchmarks/run.py [--users 10000] [--repeat 5] [--db sqlite,postgres]

Each database runs in its own process, configured here (no settings module):
SQLite in a file in a temporary directory (default journal mode), PostgreSQL in
a throwaway database ``pigeonhole_bench`` created and dropped around the run
(skipped, with the reason, when the server cannot be reached). The users and
their group are created with ``bulk_create`` first and not timed. Every timed
send is checked afterwards: exactly N inbox entries, for N distinct users, or
the run fails, so a broken send cannot pass for a fast one.

PostgreSQL is reached with PIGEONHOLE_PG_HOST (127.0.0.1), PIGEONHOLE_PG_PORT
(5432), PIGEONHOLE_PG_USER (postgres), PIGEONHOLE_PG_PASSWORD and
PIGEONHOLE_PG_DB (``test``, the database connected to for CREATE DATABASE).

Results: a table on stdout and ``benchmarks/results/send.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUTPUT = HERE / "results" / "send.json"
BACKENDS = ("sqlite", "postgres", "redis")
REDIS_URL = os.environ.get("PIGEONHOLE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
REDIS_PREFIX = f"pigeonhole-bench-{os.getpid()}"
FORMS = ("queryset", "group", "list")
BENCH_DB = "pigeonhole_bench"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- worker process


class Skip(Exception):
    """This database cannot be benchmarked here; the text says why."""


def pg_options() -> dict[str, Any]:
    return {
        "host": os.environ.get("PIGEONHOLE_PG_HOST", "127.0.0.1"),
        "port": int(os.environ.get("PIGEONHOLE_PG_PORT", "5432")),
        "user": os.environ.get("PIGEONHOLE_PG_USER", "postgres"),
        "password": os.environ.get("PIGEONHOLE_PG_PASSWORD", ""),
        "maintenance_db": os.environ.get("PIGEONHOLE_PG_DB", "test"),
    }


class Database:
    """Create the benchmark database, give Django its settings, drop it afterwards."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tmp: str | None = None
        self._admin: Any = None

    def __enter__(self) -> dict[str, Any]:
        # Redis keeps the messages; the users it reads recipients from live in SQLite.
        if self.name in ("sqlite", "redis"):
            self._tmp = tempfile.mkdtemp(prefix="pigeonhole-bench-")
            return {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.path.join(self._tmp, "bench.sqlite3"),
            }
        opts = pg_options()
        try:
            import psycopg
        except ImportError:
            raise Skip("psycopg is not installed (pip install 'psycopg[binary]')") from None
        try:
            self._admin = psycopg.connect(
                host=opts["host"],
                port=opts["port"],
                user=opts["user"],
                password=opts["password"] or None,
                dbname=opts["maintenance_db"],
                autocommit=True,
                connect_timeout=3,
            )
        except psycopg.Error as exc:
            raise Skip(
                f"PostgreSQL unreachable at {opts['host']}:{opts['port']} as {opts['user']}: "
                f"{' '.join(str(exc).split())}"
            ) from None
        try:
            self._admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
            self._admin.execute(f"CREATE DATABASE {BENCH_DB}")
        except psycopg.Error as exc:
            self._admin.close()
            raise Skip(f"cannot create database {BENCH_DB}: {' '.join(str(exc).split())}") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": BENCH_DB,
            "USER": opts["user"],
            "PASSWORD": opts["password"],
            "HOST": opts["host"],
            "PORT": str(opts["port"]),
        }

    def __exit__(self, *exc: Any) -> None:
        from django.conf import settings

        if settings.configured:
            from django.db import connections

            connections.close_all()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        if self._admin is not None:
            self._admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            self._admin.close()


def setup_django(database: dict[str, Any], backend: str) -> None:
    try:
        import pigeonhole  # noqa: F401
    except ImportError:  # not installed: use the checkout
        sys.path.insert(0, str(ROOT / "src"))

    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,  # DEBUG would keep every query in memory
        SECRET_KEY="benchmarks-only",
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "pigeonhole",
        ],
        DATABASES={"default": database},
        MESSAGE_STORAGE="pigeonhole.storage.PersistentStorage",
        PIGEONHOLE=(
            {
                "BACKEND": "pigeonhole.backends.redis.RedisBackend",
                "OPTIONS": {"url": REDIS_URL, "key_prefix": REDIS_PREFIX},
            }
            if backend == "redis"
            else {}
        ),
    )
    django.setup()


def database_version(name: str) -> str:
    from django.db import connection

    if name == "redis":
        from pigeonhole.conf import get_backend

        try:
            info = get_backend().get_client().info("server")
        except Exception as exc:
            raise Skip(f"Redis at {REDIS_URL} is not reachable: {exc}") from exc
        return f"Redis {info['redis_version']} (users in SQLite)"
    with connection.cursor() as cursor:
        if name == "sqlite":
            cursor.execute("select sqlite_version()")
            return f"SQLite {cursor.fetchone()[0]}"
        cursor.execute("show server_version")
        return f"PostgreSQL {cursor.fetchone()[0]}"


def create_users(n: int):
    """Create n users, all active, all in one group; return the group."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    User = get_user_model()
    User.objects.bulk_create(
        (User(username=f"bench{i:07d}", password="!") for i in range(n)), batch_size=2000
    )
    group = Group.objects.create(name="bench")
    Membership = User.groups.through
    Membership.objects.bulk_create(
        (
            Membership(user_id=pk, group_id=group.pk)
            for pk in User.objects.values_list("pk", flat=True)
        ),
        batch_size=2000,
    )
    return group


def check_and_clean(sent: Any, n: int, form: str) -> None:
    """Fail loudly unless the send created exactly n entries for n users; then remove them."""
    from pigeonhole.conf import get_backend
    from pigeonhole.models import InboxEntry, Message

    backend = get_backend()
    if hasattr(backend, "get_client"):  # Redis: count the entry hashes, then drop every key
        client = backend.get_client()
        found = sum(1 for _ in client.scan_iter(f"{REDIS_PREFIX}:e:*", count=5000))
        if not (sent.recipient_count == found == n):
            raise AssertionError(
                f"send() to a {form} of {n} users reported {sent.recipient_count} recipients "
                f"and created {found} entries"
            )
        keys = list(client.scan_iter(f"{REDIS_PREFIX}:*", count=5000))
        for start in range(0, len(keys), 5000):
            client.unlink(*keys[start : start + 5000])
        return

    entries = InboxEntry.objects.filter(message_id=sent.pk)
    found = entries.count()
    people = entries.values("user_id").distinct().count()
    if not (sent.recipient_count == found == people == n):
        raise AssertionError(
            f"send() to a {form} of {n} users reported {sent.recipient_count} recipients and "
            f"created {found} entries for {people} users"
        )
    entries.delete()
    Message.objects.filter(pk=sent.pk).delete()


def time_send(to: Any, n: int, form: str) -> float:
    import pigeonhole

    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        sent = pigeonhole.send(to, "Benchmark message", level=pigeonhole.PERSISTENT_INFO)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    check_and_clean(sent, n, form)
    return elapsed


def run_worker(name: str, n: int, repeat: int) -> dict[str, Any]:
    with Database(name) as database:
        setup_django(database, name)
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        version = database_version(name)
        start = time.perf_counter()
        group = create_users(n)
        log(f"[{name}] {version}: created {n} users in {time.perf_counter() - start:.2f} s")

        User = get_user_model()
        recipients = {
            "queryset": User.objects.filter(is_active=True),
            "group": group,
            "list": list(User.objects.all()),  # loaded before timing, as a caller would have it
        }
        time_send(recipients["queryset"], n, "queryset")  # warm-up, not reported
        rows = []
        for form in FORMS:
            runs = [time_send(recipients[form], n, form) for _ in range(repeat)]
            median = statistics.median(runs)
            rows.append(
                {
                    "backend": name,
                    "form": form,
                    "recipients": n,
                    "repeat": repeat,
                    "median_s": median,
                    "best_s": min(runs),
                    "recipients_per_s": n / median,
                    "runs_s": runs,
                }
            )
            log(f"[{name}] {form}: median {median:.4f} s over {repeat} runs")
        return {"backend": name, "database": version, "results": rows}


# --------------------------------------------------------------------------- parent process


def run_backend(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one database in a fresh process, so each gets its own Django settings."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    try:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            name,
            "--worker-output",
            str(out),
            "--users",
            str(args.users),
            "--repeat",
            str(args.repeat),
        ]
        proc = subprocess.run(command, check=False)
        text = out.read_text()
        if proc.returncode or not text:
            return {"backend": name, "error": f"worker exited with status {proc.returncode}"}
        return json.loads(text)
    finally:
        out.unlink(missing_ok=True)


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("backend", "form", "recipients", "median s", "best s", "recipients/s")
    lines = [
        (
            row["backend"],
            row["form"],
            f"{row['recipients']:,}",
            f"{row['median_s']:.4f}",
            f"{row['best_s']:.4f}",
            f"{row['recipients_per_s']:,.0f}",
        )
        for row in rows
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)]
    left = {0, 1}

    def fmt(cells) -> str:
        return "  ".join(
            str(cell).ljust(width) if i in left else str(cell).rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    print(fmt(header))
    print("  ".join("-" * width for width in widths))
    for line in lines:
        print(fmt(line))


def git_commit() -> str | None:
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return proc.stdout.strip() or None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--users", type=int, default=10_000, help="recipients per send")
    parser.add_argument("--repeat", type=int, default=5, help="timed sends per form")
    parser.add_argument(
        "--db",
        default=",".join(BACKENDS),
        help="comma-separated stores to run: sqlite, postgres, redis (default: all)",
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="JSON file for the results"
    )
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.users < 1 or args.repeat < 1:
        parser.error("--users and --repeat must be at least 1")
    args.dbs = [name.strip() for name in args.db.split(",") if name.strip()]
    unknown = sorted(set(args.dbs) - set(BACKENDS))
    if unknown or not args.dbs:
        parser.error(f"--db takes {', '.join(BACKENDS)}; got {args.db!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        try:
            result = run_worker(args.worker, args.users, args.repeat)
        except Skip as exc:
            result = {"backend": args.worker, "skipped": str(exc)}
        args.worker_output.write_text(json.dumps(result))
        return 0

    log(f"pigeonhole.send() to {args.users:,} users, {args.repeat} runs per form")
    outcomes = [run_backend(name, args) for name in args.dbs]
    rows = [row for outcome in outcomes for row in outcome.get("results", [])]
    print()
    if rows:
        print_table(rows)
    failed = False
    for outcome in outcomes:
        if "skipped" in outcome:
            print(f"{outcome['backend']}: skipped, {outcome['skipped']}")
        elif "error" in outcome:
            print(f"{outcome['backend']}: FAILED, {outcome['error']}")
            failed = True

    import django

    report = {
        "benchmark": "send",
        "description": "pigeonhole.send() of one PERSISTENT_INFO message to N existing users",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "users": args.users,
        "repeat": args.repeat,
        "databases": {o["backend"]: o["database"] for o in outcomes if "database" in o},
        "skipped": {o["backend"]: o["skipped"] for o in outcomes if "skipped" in o},
        "results": rows,
    }
    if rows:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
        try:
            shown = args.output.resolve().relative_to(ROOT)
        except ValueError:
            shown = args.output
        print(f"\nWrote {shown}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
