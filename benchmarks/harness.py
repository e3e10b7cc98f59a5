"""
What every benchmark shares: a throwaway database, Django settings, peak memory.

Each benchmark runs in a process of its own (``run.py`` starts them), so each
gets fresh settings, a fresh database and a memory high-water mark of its own.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STORES = ("sqlite", "sqlite-wal", "postgres", "redis")
#: The Redis stores: a single server, and a throwaway three-primary cluster
#: on spare ports that the run starts and stops itself.
REDIS_STORES = ("redis", "redis-cluster")
REDIS_URL = os.environ.get("PIGEONHOLE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
#: The cluster's URL, once a ``redis-cluster`` run has started it (see ``Database``).
CLUSTER_URL = ""
REDIS_PREFIX = f"pigeonhole-bench-{os.getpid()}"
BENCH_DB = os.environ.get("PIGEONHOLE_BENCH_DB", "pigeonhole_bench")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Skip(Exception):
    """This store cannot be benchmarked here; the text says why."""


def pg_options() -> dict[str, Any]:
    return {
        "host": os.environ.get("PIGEONHOLE_PG_HOST", "127.0.0.1"),
        "port": int(os.environ.get("PIGEONHOLE_PG_PORT", "5432")),
        "user": os.environ.get("PIGEONHOLE_PG_USER", "postgres"),
        "password": os.environ.get("PIGEONHOLE_PG_PASSWORD", ""),
        "maintenance_db": os.environ.get("PIGEONHOLE_PG_DB", "test"),
    }


class Database:
    """
    Create the benchmark database, give Django its settings, drop it afterwards.

    SQLite lives in a file in a temporary directory, in its default journal mode;
    ``sqlite-wal`` is the same in WAL mode with ``synchronous=NORMAL``, the usual
    production setting, where a commit need not wait for the disk. PostgreSQL
    runs in ``pigeonhole_bench``, created and dropped around the run. Redis keeps
    the messages of its runs; their users live in SQLite. ``redis-cluster``
    starts a cluster of three primaries for the run (``tests/backends/redis_cluster.py``)
    and stops it afterwards.
    """

    def __init__(self, store: str) -> None:
        self.store = store
        self._tmp: str | None = None
        self._admin: Any = None
        self.cluster: Any = None

    def __enter__(self) -> dict[str, Any]:
        global CLUSTER_URL
        if self.store in ("sqlite", "sqlite-wal", *REDIS_STORES):
            self._tmp = tempfile.mkdtemp(prefix="pigeonhole-bench-")
            if self.store == "redis-cluster":
                self.cluster = start_cluster(Path(self._tmp))
                CLUSTER_URL = f"redis+cluster://127.0.0.1:{self.cluster.nodes[0].port}"
            database = {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.path.join(self._tmp, "bench.sqlite3"),
            }
            if self.store == "sqlite-wal":
                database["OPTIONS"] = {
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                }
            return database
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
            self._admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
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
            if self.store in REDIS_STORES:
                drop_redis_keys()
        if self.cluster is not None:
            self.cluster.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        if self._admin is not None:
            self._admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            self._admin.close()


def start_cluster(directory: Path) -> Any:
    """Start a throwaway Redis Cluster of three primaries; return it (``.nodes``, ``.stop()``)."""
    sys.path.insert(0, str(ROOT))
    try:
        from tests.backends.redis_cluster import ClusterNodes
    except ImportError as exc:
        raise Skip(f"the cluster helper needs the test dependencies: {exc}") from None
    try:
        return ClusterNodes(directory).start()
    except BaseException as exc:  # pytest.skip() when redis-server is missing
        raise Skip(f"cannot start a Redis Cluster: {exc}") from None


def redis_url(store: str) -> str:
    """Return the URL the store's backend takes."""
    return CLUSTER_URL if store == "redis-cluster" else REDIS_URL


def setup_django(database: dict[str, Any], store: str, **extra: Any) -> None:
    """Configure Django for one run; ``extra`` adds or overrides settings."""
    try:
        import pigeonhole  # noqa: F401
    except ImportError:  # not installed: use the checkout
        sys.path.insert(0, str(ROOT / "src"))

    import django
    from django.conf import settings

    pigeonhole_settings: dict[str, Any] = {}
    if store in REDIS_STORES:
        pigeonhole_settings = {
            "BACKEND": "pigeonhole.backends.redis.RedisBackend",
            "OPTIONS": {"url": redis_url(store), "key_prefix": REDIS_PREFIX},
        }
    options: dict[str, Any] = {
        "DEBUG": False,  # DEBUG would keep every query in memory
        "SECRET_KEY": "benchmarks-only",
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "INSTALLED_APPS": [
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "pigeonhole",
        ],
        "DATABASES": {"default": database},
        "MESSAGE_STORAGE": "pigeonhole.storage.PersistentStorage",
        "PIGEONHOLE": pigeonhole_settings,
    }
    options.update(extra)
    settings.configure(**options)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def store_version(store: str) -> str:
    from django.db import connection

    if store in REDIS_STORES:
        from pigeonhole.conf import get_backend

        try:
            info = redis_info_of(get_backend().get_client(), "server")
        except Exception as exc:
            raise Skip(f"Redis at {redis_url(store)} is not reachable: {exc}") from exc
        if store == "redis-cluster":
            return f"Redis {info['redis_version']}, cluster of 3 primaries (users in SQLite)"
        return f"Redis {info['redis_version']} (users in SQLite)"
    with connection.cursor() as cursor:
        if store.startswith("sqlite"):
            cursor.execute("select sqlite_version()")
            version = f"SQLite {cursor.fetchone()[0]}"
            cursor.execute("PRAGMA journal_mode")
            return f"{version}, journal_mode={cursor.fetchone()[0]}"
        cursor.execute("show server_version")
        return f"PostgreSQL {cursor.fetchone()[0].split()[0]}"


def redis_info_of(client: Any, section: str | None = None) -> dict[str, Any]:
    """
    Return ``INFO`` of the server, or of a cluster's nodes: numbers summed,
    other values taken from the first node.
    """
    # A cluster client asks one node unless told otherwise: ask every primary.
    nodes = {"target_nodes": client.PRIMARIES} if hasattr(client, "get_primaries") else {}
    info = client.info(section, **nodes) if section else client.info(**nodes)
    if "redis_version" in info:
        return info
    merged: dict[str, Any] = {}
    for node in info.values():
        for name, value in node.items():
            if isinstance(value, int | float) and name in merged:
                merged[name] += value
            else:
                merged.setdefault(name, value)
    return merged


def drop_redis_keys() -> None:
    from pigeonhole.conf import get_backend

    backend = get_backend()
    if not hasattr(backend, "get_client"):
        return
    client = backend.get_client()
    keys = list(client.scan_iter(f"{REDIS_PREFIX}:*", count=5000))
    for start in range(0, len(keys), 5000):
        client.unlink(*keys[start : start + 5000])


def create_users(n: int, prefix: str = "bench"):
    """Create ``n`` active users, all in one group; return the group."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    User = get_user_model()
    User.objects.bulk_create(
        (User(username=f"{prefix}{i:07d}", password="!") for i in range(n)), batch_size=2000
    )
    group = Group.objects.create(name=prefix)
    Membership = User.groups.through
    Membership.objects.bulk_create(
        (
            Membership(user_id=pk, group_id=group.pk)
            for pk in User.objects.filter(username__startswith=prefix).values_list("pk", flat=True)
        ),
        batch_size=2000,
    )
    return group


# ----------------------------------------------------------------------------- memory


def _status(field: str) -> int:
    """Return a ``/proc/self/status`` figure in bytes (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> int:
    """
    Reset the process's peak RSS to its current RSS and return that.

    Writing 5 to ``clear_refs`` resets the high-water mark (Linux 4.0+), so a
    peak measured afterwards belongs to the code that runs afterwards, not to
    the setup before it.
    """
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return _status("VmRSS")


def peak_rss() -> int:
    return _status("VmHWM")


# ----------------------------------------------------------------------------- timing


def median_ms(func: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Call ``func`` ``repeat`` times; return the median in ms and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def row(
    benchmark: str,
    store: str,
    metric: str,
    value: float,
    unit: str,
    *,
    target: float | None = None,
    at_least: bool = True,
    detail: str = "",
) -> dict[str, Any]:
    """One figure with its target and verdict, as the report prints it."""
    ok = None if target is None else (value >= target if at_least else value <= target)
    return {
        "benchmark": benchmark,
        "store": store,
        "metric": metric,
        "value": value,
        "unit": unit,
        "target": target,
        "at_least": at_least,
        "ok": ok,
        "detail": detail,
    }
