"""
The model-checked state machine (``state_machine.py``) against every backend.

The database run uses whichever database ``PIGEONHOLE_TEST_DB`` picks; each
Hypothesis example empties the two tables first, inside the test's transaction.
The Redis run needs ``pigeonhole.backends.redis`` and ``PIGEONHOLE_TEST_REDIS_URL``
(``dev.py test`` sets it when Redis answers); each example gets its own key prefix.
"""

import importlib
import importlib.util
import os
import uuid

import pytest

from pigeonhole.backends.db import DatabaseBackend
from pigeonhole.models import FoldedEntry, InboxEntry, Message, Mute

from .state_machine import make_state_machine, run_state_machine

pytestmark = pytest.mark.django_db

CI = os.environ.get("CI", "").strip().lower() == "true"
REDIS_MODULE = "pigeonhole.backends.redis"


@pytest.fixture
def user_ids(django_user_model):
    return [django_user_model.objects.create_user(f"machine{i}").pk for i in range(3)]


def empty_database(backend):
    alias = backend.db_for_write()
    # The history first: no cascade from the messages reaches it (see FoldedEntry).
    FoldedEntry.objects.using(alias).all().delete()
    InboxEntry.objects.using(alias).all().delete()
    Message.objects.using(alias).all().delete()
    Mute.objects.using(alias).all().delete()


def test_database_backend_agrees_with_the_model(user_ids):
    machine = make_state_machine(DatabaseBackend, user_ids, empty_database, name="Database")
    run_state_machine(machine)


def test_memory_backend_agrees_with_the_model(user_ids):
    """The store in tests/backends/memory.py, written against the hooks alone."""
    from .memory import MemoryBackend

    run_state_machine(make_state_machine(MemoryBackend, user_ids, name="Memory"))


def redis_backend_class():
    """Return ``(RedisBackend, url)``, or skip when there is no Redis backend or server to test."""
    url = os.environ.get("PIGEONHOLE_TEST_REDIS_URL")
    if not url:
        pytest.skip("PIGEONHOLE_TEST_REDIS_URL is not set (dev.py test sets it when Redis answers)")
    if importlib.util.find_spec(REDIS_MODULE) is None:
        pytest.skip(f"{REDIS_MODULE} does not exist yet")
    try:
        module = importlib.import_module(REDIS_MODULE)
    except Exception as exc:
        if CI:
            raise
        pytest.skip(f"{REDIS_MODULE} does not import: {exc!r}")
    return module.RedisBackend, url


class RedisStore:
    """A fresh key prefix per example, and the deletion of its keys afterwards."""

    def __init__(self, backend_class, url: str) -> None:
        import redis

        self.backend_class = backend_class
        self.url = url
        self.client = redis.Redis.from_url(url)
        self.prefixes: list[str] = []

    def factory(self):
        prefix = f"sm-{uuid.uuid4().hex}"
        self.prefixes.append(prefix)
        return self.backend_class(url=self.url, key_prefix=prefix)

    def cleanup(self, backend) -> None:
        self.delete_keys(self.prefixes[-1])
        close = getattr(backend, "close", None)
        if close is not None:
            close()  # the example is over (or not begun): let its connections go

    def delete_keys(self, prefix: str) -> None:
        # The prefix is hex and a dash: nothing in it for SCAN's glob to expand.
        keys = list(self.client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            self.client.delete(*keys[start : start + 1000])

    def close(self) -> None:
        for prefix in self.prefixes:
            self.delete_keys(prefix)
        self.client.close()


def test_redis_backend_agrees_with_the_model(user_ids):
    backend_class, url = redis_backend_class()
    store = RedisStore(backend_class, url)
    try:
        machine = make_state_machine(store.factory, user_ids, store.cleanup, name="Redis")
        run_state_machine(machine)
    finally:
        store.close()
