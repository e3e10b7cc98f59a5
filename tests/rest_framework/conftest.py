"""
Clients for the REST API tests.

Tests that use the ``store`` fixture (root ``conftest.py``) run on the database
backend and again on Redis; those that only concern HTTP plumbing use the
database alone.
"""

import pytest
from rest_framework.test import APIClient


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
