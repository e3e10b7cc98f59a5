"""
The request path: a logged-in user POSTs a message, then GETs a page showing it.

The same loop runs with Django's own ``FallbackStorage`` and a plain INFO message,
in the same process, interleaved in blocks so that drift in the machine's speed
falls on both alike. The figure is pigeonhole's requests per second over
Django's. Queries are counted apart: pigeonhole's own (its tables), and everything
a logged-in page costs anyway (session, user).

Pigeonhole runs with ``PIGEONHOLE["CACHE"]`` set, as a site that cares about
this path would: a Redis cache when Redis answers, else the database cache.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.template import engines
from django.urls import path
from harness import REDIS_PREFIX, REDIS_URL, log, peak_rss, reset_peak_rss, row

NAME = "request path"
LOOPS = 2000
BLOCK = 250
RATIO_TARGET = 0.75
#: Pigeonhole's own statements: a POST stores two rows (one statement on PostgreSQL),
#: a GET that shows messages claims them in one, an explicit acknowledgement is one.
POST_QUERY_TARGET = 2
GET_QUERY_TARGET = 1
ACK_QUERY_TARGET = 1
#: Peak memory the request loop may add: it must not grow with the number of requests.
MEMORY_TARGET_MB = 5.0
#: The database cache's table, named so that no query on it counts as pigeonhole's.
CACHE_TABLE = "bench_cache"

# Both views use request.user, as any page of a logged-in user does (a navbar, a
# permission check), so both loops pay for the session and the user alike and the
# ratio compares only what the storages add.
PAGE = (
    "<nav>{{ user.get_username }}</nav>"
    "{% for m in messages %}<li class='{{ m.tags }}'>{{ m }}</li>{% endfor %}"
)


def add(request):
    assert request.user.is_authenticated
    level = int(request.POST["level"])
    messages.add_message(request, level, "Your export is ready.")
    return HttpResponse(status=204)


def show(request):
    template = engines["django"].from_string(PAGE)
    context = {"user": request.user, "messages": messages.get_messages(request)}
    return HttpResponse(template.render(context))


urlpatterns = [path("add/", add), path("show/", show)]

SETTINGS = {
    "INSTALLED_APPS": [
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "pigeonhole",
    ],
    "MIDDLEWARE": [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    "ROOT_URLCONF": "request_path",
    "SESSION_ENGINE": "django.contrib.sessions.backends.db",
    "TEMPLATES": [{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
    "ALLOWED_HOSTS": ["testserver"],
    "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
}


class QueryCounter:
    """Count SQL statements, and those touching pigeonhole's tables, via execute_wrapper."""

    def __init__(self) -> None:
        self.total = self.own = 0

    def __call__(self, execute, sql, params, many, context):
        self.total += 1
        self.own += "pigeonhole_" in sql
        return execute(sql, params, many, context)


class RoundTrips:
    """
    Count what a request waits for besides Python: commits, SQL statements, Redis calls.

    A commit is a write in autocommit mode or the end of an outermost atomic
    block; in SQLite's default journal mode and on PostgreSQL each waits for the
    disk. Redis calls cover the cache and the Redis store alike (one command or
    one pipeline each). Used while the counts are taken, never while timing.
    """

    WRITES = ("INSERT", "UPDATE", "DELETE", "WITH", "REPLACE")

    def __init__(self, pairs: int) -> None:
        self.pairs = pairs
        self.commits = self.statements = self.redis = 0

    def __enter__(self) -> RoundTrips:
        import redis
        from django.db import DEFAULT_DB_ALIAS, connections

        self._connection = connections[DEFAULT_DB_ALIAS]
        commit, execute, pipeline = (
            self._connection.commit,
            redis.Redis.execute_command,
            redis.client.Pipeline.execute,
        )

        def counted_commit(*args, **kwargs):
            self.commits += 1
            return commit(*args, **kwargs)

        def counted_command(client, *args, **kwargs):
            self.redis += 1
            return execute(client, *args, **kwargs)

        def counted_pipeline(pipe, *args, **kwargs):
            self.redis += 1
            return pipeline(pipe, *args, **kwargs)

        self._restore = (execute, pipeline)
        self._connection.commit = counted_commit
        redis.Redis.execute_command = counted_command
        redis.client.Pipeline.execute = counted_pipeline
        self._wrapper = self._connection.execute_wrapper(self._statement)
        self._wrapper.__enter__()
        return self

    def _statement(self, execute, sql, params, many, context):
        self.statements += 1
        autocommit = not context["connection"].in_atomic_block
        if autocommit and sql.lstrip()[:7].upper().startswith(self.WRITES):
            self.commits += 1
        return execute(sql, params, many, context)

    def __exit__(self, *exc: Any) -> None:
        import redis

        self._wrapper.__exit__(*exc)
        del self._connection.commit
        redis.Redis.execute_command, redis.client.Pipeline.execute = self._restore

    def __str__(self) -> str:
        n = self.pairs
        return (
            f"{self.commits / n:g} commits, {self.statements / n:g} SQL statements, "
            f"{self.redis / n:g} Redis calls"
        )


def round_trips(client, level: int, pairs: int = 20) -> RoundTrips:
    """Count what ``pairs`` POST+GET pairs wait for."""
    with RoundTrips(pairs) as trips:
        loop(client, level, pairs)
    return trips


def loop(client, level: int, n: int) -> tuple[float, float]:
    """Run ``n`` POST+GET pairs; return the wall time and this process's CPU time."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        response = client.post("/add/", {"level": level})
        assert response.status_code == 204
        page = client.get("/show/")
        assert b"Your export is ready." in page.content, page.content
    return time.perf_counter() - start, time.process_time() - cpu


def shared_cache() -> tuple[dict[str, Any], str]:
    """Return a cache every process of a site would share, and what it is."""
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        log(f"Redis at {REDIS_URL} does not answer ({exc}); using the database cache")
        from django.core.management import call_command

        call_command("createcachetable", CACHE_TABLE, verbosity=0)
        config = {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": CACHE_TABLE}
        return config, "database cache"
    config = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"{REDIS_PREFIX}-cache",
    }
    return config, "Redis cache"


def drop_cache_keys(config: dict[str, Any]) -> None:
    if "KEY_PREFIX" in config:
        import redis

        client = redis.Redis.from_url(config["LOCATION"])
        keys = list(client.scan_iter(f"{config['KEY_PREFIX']}:*", count=1000))
        if keys:
            client.unlink(*keys)


def count_queries(client, level: int, samples: int = 20) -> dict[str, float]:
    from django.db import connection

    import pigeonhole
    from pigeonhole.service import store_for_user

    post, get, ack = QueryCounter(), QueryCounter(), QueryCounter()
    for _ in range(samples):
        with connection.execute_wrapper(post):
            client.post("/add/", {"level": level})
        with connection.execute_wrapper(get):
            client.get("/show/")
    # The first page to find nothing unread leaves a placeholder in the session;
    # the next reads the inbox versions before the store, and notes them.
    client.get("/show/")
    client.get("/show/")
    idle = QueryCounter()
    with connection.execute_wrapper(idle):
        for _ in range(samples):
            client.get("/show/")  # nothing unread now
    # An explicit acknowledgement (strict mark_read), as a close button sends it.
    user = get_user(client)
    for i in range(samples):
        stored = store_for_user(user, pigeonhole.PERSISTENT_INFO, f"Ack {i}")
        with connection.execute_wrapper(ack):
            assert pigeonhole.mark_read(user, [stored.id]) == 1
    return {
        "ack_own": ack.own / samples,
        "post_own": post.own / samples,
        "get_own": get.own / samples,
        "post_total": post.total / samples,
        "get_total": get.total / samples,
        "idle_own": idle.own / samples,
    }


def get_user(client) -> Any:
    from django.contrib.auth import SESSION_KEY, get_user_model

    return get_user_model()._default_manager.get(pk=client.session[SESSION_KEY])


def run(store: str, quick: bool = False) -> list[dict[str, Any]]:
    from django.conf import settings
    from django.test.utils import override_settings

    cache, cache_name = shared_cache()
    log(f"[{store}] request path: PIGEONHOLE['CACHE'] is a {cache_name}")
    try:
        with override_settings(
            CACHES={**settings.CACHES, "pigeonhole": cache},
            PIGEONHOLE={**settings.PIGEONHOLE, "CACHE": "pigeonhole"},
        ):
            return measure(store, quick, cache_name)
    finally:
        drop_cache_keys(cache)


def measure(store: str, quick: bool, cache_name: str) -> list[dict[str, Any]]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import override_settings

    import pigeonhole

    loops = 200 if quick else LOOPS
    user = get_user_model().objects.create_user("reader", password="x")
    client = Client()
    client.force_login(user)
    storages = {
        "django": ("django.contrib.messages.storage.fallback.FallbackStorage", messages.INFO),
        "pigeonhole": ("pigeonhole.storage.PersistentStorage", pigeonhole.PERSISTENT_INFO),
    }
    elapsed = {name: 0.0 for name in storages}
    cpu = {name: 0.0 for name in storages}
    peaks = {name: 0 for name in storages}
    for storage, level in storages.values():  # warm up both
        with override_settings(MESSAGE_STORAGE=storage):
            loop(client, level, 50)
    gc.collect()
    for _ in range(max(1, loops // BLOCK)):
        for name, (storage, level) in storages.items():
            with override_settings(MESSAGE_STORAGE=storage):
                before = reset_peak_rss()
                wall, used = loop(client, level, min(BLOCK, loops))
                elapsed[name] += wall
                cpu[name] += used
                peaks[name] = max(peaks[name], peak_rss() - before)
    done = max(1, loops // BLOCK) * min(BLOCK, loops)
    rate = {name: 2 * done / seconds for name, seconds in elapsed.items()}
    cpu_rate = {name: 2 * done / max(seconds, 1e-9) for name, seconds in cpu.items()}
    log(f"[{store}] request path: {rate['pigeonhole']:,.0f} req/s vs Django {rate['django']:,.0f}")
    # Before count_queries(), whose empty pages leave a note in the session that the timed
    # loops never had (its first page then reads the cache).
    trips = {}
    for name, (storage, level) in storages.items():
        with override_settings(MESSAGE_STORAGE=storage):
            trips[name] = round_trips(client, level)
    with override_settings(MESSAGE_STORAGE=storages["pigeonhole"][0]):
        queries = count_queries(client, pigeonhole.PERSISTENT_INFO)
    uncached = {**settings.PIGEONHOLE, "CACHE": None}
    with override_settings(MESSAGE_STORAGE=storages["pigeonhole"][0], PIGEONHOLE=uncached):
        without_cache = count_queries(client, pigeonhole.PERSISTENT_INFO)
    with override_settings(MESSAGE_STORAGE=storages["django"][0]):
        django_queries = count_queries(client, messages.INFO)
    detail = f"{done:,} POST+GET pairs each"
    rows = [
        row(
            NAME,
            store,
            "requests/s, pigeonhole / Django's FallbackStorage",
            rate["pigeonhole"] / rate["django"],
            "x",
            target=RATIO_TARGET,
            detail=f"{rate['pigeonhole']:,.0f} vs {rate['django']:,.0f} req/s; {detail}; "
            f"PIGEONHOLE['CACHE']: {cache_name}",
        ),
        row(
            NAME,
            store,
            "requests per CPU-second of the process, pigeonhole / Django",
            cpu_rate["pigeonhole"] / cpu_rate["django"],
            "x",
            target=RATIO_TARGET,
            detail=f"{cpu_rate['pigeonhole']:,.0f} vs {cpu_rate['django']:,.0f}: without the "
            "time spent waiting on the disk or on a database server",
        ),
        row(
            NAME,
            store,
            "commits per POST+GET pair, pigeonhole",
            trips["pigeonhole"].commits / trips["pigeonhole"].pairs,
            "commits",
            detail=f"pigeonhole: {trips['pigeonhole']}; Django's storage: {trips['django']}",
        ),
    ]
    if not store.startswith(("redis", "sqlite-wal")):
        rows += [
            row(
                NAME,
                store,
                "pigeonhole queries per POST",
                queries["post_own"],
                "queries",
                target=POST_QUERY_TARGET,
                at_least=False,
                detail=f"all queries {queries['post_total']:g} (Django's storage: "
                f"{django_queries['post_total']:g})",
            ),
            row(
                NAME,
                store,
                "pigeonhole queries per GET",
                queries["get_own"],
                "queries",
                target=GET_QUERY_TARGET,
                at_least=False,
                detail=f"all queries {queries['get_total']:g} (Django's storage: "
                f"{django_queries['get_total']:g})",
            ),
            row(
                NAME,
                store,
                "pigeonhole queries per explicit mark_read",
                queries["ack_own"],
                "queries",
                target=ACK_QUERY_TARGET,
                at_least=False,
                detail="strict: an id that is not the user's would raise MessageNotFound",
            ),
            row(
                NAME,
                store,
                f"pigeonhole queries per GET, nothing unread (CACHE: {cache_name})",
                queries["idle_own"],
                "queries",
                target=0,
                at_least=False,
                detail=f"with PIGEONHOLE['CACHE'] ({cache_name}); without it: "
                f"{without_cache['idle_own']:g}",
            ),
        ]
    rows.append(
        row(
            "memory",
            store,
            "request loop: peak RSS added (pigeonhole)",
            peaks["pigeonhole"] / 2**20,
            "MB",
            target=MEMORY_TARGET_MB,
            at_least=False,
            detail=f"Django's storage: {peaks['django'] / 2**20:.1f} MB",
        )
    )
    return rows
