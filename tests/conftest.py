"""Fixtures shared by the whole suite: two users and a group holding both.

Most behaviour is per recipient, so tests need at least two users to show that one user's
messages, counts and state changes never leak to another.
"""

import pytest
from django.contrib.auth.models import Group


@pytest.fixture
def user(db, django_user_model):
    return django_user_model.objects.create_user(
        username="alice", email="alice@example.com", password="password"
    )


@pytest.fixture
def other_user(db, django_user_model):
    return django_user_model.objects.create_user(
        username="bob", email="bob@example.com", password="password"
    )


@pytest.fixture
def group(db, user, other_user):
    staff = Group.objects.create(name="staff")
    staff.user_set.add(user, other_user)
    return staff


STORES = ("db", "redis")


def pytest_generate_tests(metafunc):
    """
    Run every test that uses the ``store`` fixture once per backend.

    Tests that look at the database backend's own tables, or count its SQL, carry
    ``@pytest.mark.db_only`` and run on the database alone.
    """
    if "store" in metafunc.fixturenames:
        only_db = metafunc.definition.get_closest_marker("db_only") is not None
        metafunc.parametrize("store", ["db"] if only_db else STORES, indirect=True)


@pytest.fixture
def store(request, settings):
    """
    Configure the backend named by the test's parameter; yield its name.

    Redis runs get a key prefix of their own, checked for consistency and
    deleted afterwards, so parallel runs on one server never meet.
    """
    from pigeonhole.conf import get_backend

    # unittest-style classes can't be parametrised; they run on the database.
    if getattr(request, "param", "db") == "db":
        yield "db"
        return
    from tests.backends.redis_support import check_indexes, delete_keys, redis_url, unique_prefix

    url, prefix = redis_url(), unique_prefix("e2e")
    settings.PIGEONHOLE = {
        **settings.PIGEONHOLE,
        "BACKEND": "pigeonhole.backends.redis.RedisBackend",
        "OPTIONS": {"url": url, "key_prefix": prefix, "socket_connect_timeout": 2},
    }
    yield "redis"
    backend = get_backend()
    try:
        check_indexes(backend)
    finally:
        backend.close()
        delete_keys(url, prefix)
