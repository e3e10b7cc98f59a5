"""
Fixtures for the REST API tests: clients, and the store each test runs on.

``store`` runs a test on the database backend and again on Redis (skipped
without a Redis server, failed under CI), so the API is shown to behave the
same on both. Tests that only concern HTTP plumbing use the database alone.
"""

import pytest
from rest_framework.test import APIClient

from pigeonhole.conf import get_backend
from tests.backends.redis_support import delete_keys, redis_url, unique_prefix


@pytest.fixture(params=["db", "redis"])
def store(request, settings, db):
    """Run the test on each backend; yield its name."""
    if request.param == "db":
        yield "db"
        return
    url = redis_url()
    prefix = unique_prefix("rest")
    settings.PIGEONHOLE = {
        "BACKEND": "pigeonhole.backends.redis.RedisBackend",
        "OPTIONS": {"url": url, "key_prefix": prefix, "socket_connect_timeout": 2},
    }
    yield "redis"
    get_backend().close()
    delete_keys(url, prefix)


@pytest.fixture
def api_client(user):
    """A client logged in as ``user`` through the session, CSRF checks on."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    client.cookies.load({"csrftoken": "a" * 32})
    client.credentials(HTTP_X_CSRFTOKEN="a" * 32)
    return client


@pytest.fixture
def anon_client():
    return APIClient(enforce_csrf_checks=True)
