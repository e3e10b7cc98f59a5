"""
Request bodies no parser should choke on: every malformed body is a 400, never a 500.

The module is its own URL configuration, so the main API and the compatibility
endpoints are tried alike.
"""

import pytest
from django.contrib.auth.models import Permission
from django.urls import include, path

import pigeonhole

urlpatterns = [
    path("api/", include("pigeonhole.rest_framework.urls")),
    path("drf/", include("pigeonhole.compat.drf_messages.urls")),
    path("stored/", include("pigeonhole.compat.stored_messages.urls")),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

ROUTES = [
    ("post", "/api/messages/"),
    ("post", "/api/messages/{id}/read/"),
    ("post", "/api/messages/{id}/unread/"),
    ("post", "/api/messages/{id}/archive/"),
    ("post", "/api/messages/{id}/unarchive/"),
    ("post", "/api/messages/{id}/reply/"),
    ("post", "/api/messages/read/"),
    ("patch", "/api/preferences/"),
    ("post", "/drf/{id}/read/"),
    ("post", "/drf/read/"),
    ("post", "/stored/inbox/{id}/read/"),
    ("post", "/stored/mark_all_read/"),
]


def deep(depth):
    """A JSON object whose ``data`` holds lists ``depth`` levels deep in all."""
    return '{"message": "hi", "data": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


@pytest.fixture
def entry_id(user, other_user):
    user.user_permissions.add(Permission.objects.get(codename="add_message"))
    pigeonhole.send(user, "question", from_user=other_user)
    return pigeonhole.inbox(user)[0].id


# 5,000 overflows the parser itself; 150 parses, and is refused before anything
# walks it; 950 parses on some Pythons, and overflows whatever walks it next.
@pytest.mark.parametrize("depth", [150, 950, 5000])
@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_deeply_nested_body_is_a_400(api_client, entry_id, method, route, depth):
    response = getattr(api_client, method)(
        route.format(id=entry_id), data=deep(depth), content_type="application/json"
    )
    # Routes that take no body answer as if it were empty; none answers 500.
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 400:
        assert "nested more than" in response.json()["detail"]


@pytest.mark.parametrize(("method", "route"), ROUTES)
@pytest.mark.parametrize(
    "body", ['{"message": ', "[1, 2", "\ufeff{}", '{"message": NaN}', '{"a": 1e999999}']
)
def test_malformed_body_is_a_400(api_client, entry_id, method, route, body):
    response = getattr(api_client, method)(
        route.format(id=entry_id), data=body.encode(), content_type="application/json"
    )
    assert response.status_code in (200, 400), response.content[:300]
