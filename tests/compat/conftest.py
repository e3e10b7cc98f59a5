"""Fixtures for the compatibility modules: a logged-in client and a CSRF-checking one."""

import re

import pytest
from django.test import Client

from pigeonhole.rest_framework.serializers import MAX_PAGE_SIZE


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


@pytest.fixture
def crowded_inbox(user):
    """More messages for ``user`` than one page of the REST API holds; return how many."""
    import pigeonhole

    count = MAX_PAGE_SIZE + 30
    for number in range(count):
        pigeonhole.send(user, f"m{number}")
    return count


def entry_reads(queries):
    """The LIMIT of each query that read inbox entries (database backend)."""
    return [
        int(found.group(1))
        for query in queries
        if "inboxentry" in query["sql"].lower()
        and (found := re.search(r"\bLIMIT (\d+)", query["sql"], re.IGNORECASE))
    ]
