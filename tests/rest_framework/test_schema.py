"""
The OpenAPI schema, and schemathesis against a live server speaking it.

Every operation gets a few generated requests, authenticated with a token, and
fails on any 500 or any answer the schema does not describe. The example count
is kept small so the run stays within seconds on every database. The
drf-messages compatibility endpoints get the same treatment, from a schema of
their own (``compat_urls.py``).
"""

import re

import pytest
import schemathesis
from django.contrib.auth.models import Permission
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

import pigeonhole

OPERATIONS = {
    ("GET", "/api/messages/"),
    ("POST", "/api/messages/"),
    ("GET", "/api/messages/{id}/"),
    ("DELETE", "/api/messages/{id}/"),
    ("POST", "/api/messages/{id}/read/"),
    ("POST", "/api/messages/{id}/unread/"),
    ("POST", "/api/messages/{id}/archive/"),
    ("POST", "/api/messages/{id}/unarchive/"),
    ("POST", "/api/messages/{id}/reply/"),
    ("POST", "/api/messages/{id}/save/"),
    ("POST", "/api/messages/{id}/unsave/"),
    ("POST", "/api/messages/{id}/mute/"),
    ("POST", "/api/messages/{id}/unmute/"),
    ("POST", "/api/messages/seen/"),
    ("GET", "/api/preferences/export/"),
    ("GET", "/api/messages/count/"),
    ("POST", "/api/messages/read/"),
    ("GET", "/api/preferences/"),
    ("PATCH", "/api/preferences/"),
}
API_PATHS = r"^/api/(messages|preferences)/"
COMPAT_OPERATIONS = {
    ("GET", "/compat/drf_messages/"),
    ("GET", "/compat/drf_messages/{id}/"),
    ("DELETE", "/compat/drf_messages/{id}/"),
    ("GET", "/compat/drf_messages/peek/"),
    ("POST", "/compat/drf_messages/{id}/read/"),
    ("POST", "/compat/drf_messages/read/"),
}


# ignored_auth sends the token alongside a made-up session cookie and calls the 200 a
# leak (test_safety.py covers refused credentials). positive_data_acceptance wants a 2xx
# for any body the schema allows, but a recipient id that names nobody is a 400 here.
SKIP = [schemathesis.checks.ignored_auth, schemathesis.checks.positive_data_acceptance]


@pytest.mark.django_db
def test_schema_describes_every_endpoint():
    schema = APIClient().get("/api/schema/?format=json").json()
    found = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        if re.match(API_PATHS, path)
        for method in item
    }
    assert found == OPERATIONS
    message = schema["components"]["schemas"]["Message"]
    assert tuple(message["properties"]) == pigeonhole.representation.FIELDS


@pytest.fixture
def token(transactional_db, django_user_model):
    """A user with a token, a few messages (one from a sender) and sending rights."""
    user = django_user_model.objects.create_user("fuzz")
    other = django_user_model.objects.create_user("other")
    user.user_permissions.add(Permission.objects.get(codename="add_message"))
    pigeonhole.send(user, "plain")
    pigeonhole.send(user, "from someone", from_user=other)
    pigeonhole.mark_read(user, pigeonhole.inbox(user, limit=1))
    return Token.objects.create(user=user).key


@pytest.fixture
def api_schema(live_server, token):
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json")
    return schema.include(path_regex=API_PATHS)


def conforms(schema, operations, token):
    """Call each operation with a few generated requests; fail on any 500 or undocumented answer."""
    found = [result.ok() for result in schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in found} == operations
    for operation in found:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=5,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case):
            case.call_and_validate(
                headers={"Authorization": f"Token {token}"},
                excluded_checks=SKIP,
            )

        check()


def test_api_conforms_to_its_schema(api_schema, token):
    # One loop over the operations rather than schemathesis.pytest.from_fixture,
    # which does not work with the pytest this suite runs.
    conforms(api_schema, OPERATIONS, token)


@pytest.mark.urls("tests.rest_framework.compat_urls")
def test_drf_messages_endpoints_conform_to_their_schema(live_server, token):
    schema = schemathesis.openapi.from_url(f"{live_server.url}/compat/schema/?format=json")
    conforms(schema.include(path_regex=r"^/compat/drf_messages/"), COMPAT_OPERATIONS, token)
