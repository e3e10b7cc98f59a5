"""Fixtures for the compatibility modules: a logged-in client and a CSRF-checking one."""

import pytest
from django.test import Client


@pytest.fixture
def alice_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def csrf_client(user):
    """A client that, like a browser, must send the CSRF token with every POST."""
    checked = Client(enforce_csrf_checks=True)
    checked.force_login(user)
    return checked


def lines(response):
    return [line.strip() for line in response.content.decode().splitlines() if line.strip()]
