"""Isolation, authentication, throttling and bad input: never another's inbox, never a 500."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

import pigeonhole
from pigeonhole.rest_framework.views import MessageViewSet

pytestmark = pytest.mark.django_db

LIST = "/api/messages/"


def send(user, text="hello", **options):
    pigeonhole.send(user, text, **options)
    return pigeonhole.inbox(user, state="all", limit=1)[0]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/messages/{id}/"),
        ("post", "/api/messages/{id}/read/"),
        ("post", "/api/messages/{id}/unread/"),
        ("post", "/api/messages/{id}/archive/"),
        ("post", "/api/messages/{id}/unarchive/"),
        ("post", "/api/messages/{id}/reply/"),
        ("delete", "/api/messages/{id}/"),
    ],
)
def test_another_users_message_is_a_404(store, api_client, user, other_user, method, path):
    theirs = send(other_user, "secret", from_user=user)
    pigeonhole.mark_read(other_user, theirs)
    before = pigeonhole.inbox(other_user, state="all")[0]
    gone = 10**12
    response = getattr(api_client, method)(
        path.format(id=theirs.id), {"message": "x"}, format="json"
    )
    missing = getattr(api_client, method)(path.format(id=gone), {"message": "x"}, format="json")
    assert response.status_code == missing.status_code == 404
    assert "secret" not in response.content.decode()
    [after] = pigeonhole.inbox(other_user, state="all")
    assert (after.read_at, after.archived_at) == (before.read_at, before.archived_at)
    assert pigeonhole.inbox(user, state="all") == []


def test_lists_and_counts_never_show_another_inbox(store, api_client, user, other_user):
    send(other_user, "theirs")
    assert api_client.get(LIST, {"state": "all"}).json()["results"] == []
    assert api_client.get("/api/messages/count/").json()["unread"] == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", LIST),
        ("get", "/api/messages/count/"),
        ("get", "/api/messages/1/"),
        ("post", "/api/messages/1/read/"),
        ("post", "/api/messages/read/"),
        ("post", LIST),
        ("delete", "/api/messages/1/"),
    ],
)
def test_anonymous_requests_are_refused(anon_client, method, path):
    response = getattr(anon_client, method)(path)
    assert response.status_code in (401, 403)


def test_session_auth_enforces_csrf_on_changes(user):
    entry = send(user)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get(LIST).status_code == 200  # reads need no token
    assert client.post(f"/api/messages/{entry.id}/read/").status_code == 403
    assert pigeonhole.unread_count(user) == 1
    client.get(LIST)  # any page sets the cookie in a browser; here we set it
    client.cookies.load({"csrftoken": "b" * 32})
    response = client.post(f"/api/messages/{entry.id}/read/", HTTP_X_CSRFTOKEN="b" * 32)
    assert response.status_code == 200
    assert pigeonhole.unread_count(user) == 0


def test_token_auth_works_without_csrf(user):
    entry = send(user)
    token = Token.objects.create(user=user)
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.post(f"/api/messages/{entry.id}/read/").status_code == 200
    assert client.get("/api/messages/count/").json()["unread"] == 0
    client.credentials(HTTP_AUTHORIZATION="Token wrong")
    # 403, not 401: DRF challenges with the first class's scheme, and sessions have none.
    assert client.get(LIST).status_code == 403


def test_throttling_uses_the_pigeonhole_scope(api_client, rf, user):
    class Throttle(ScopedRateThrottle):
        THROTTLE_RATES = {"pigeonhole": "2/minute"}

    view = MessageViewSet.as_view({"get": "count"}, throttle_classes=[Throttle])
    request = rf.get("/api/messages/count/")
    request.user = user
    request._dont_enforce_csrf_checks = True
    from django.core.cache import cache

    cache.clear()
    codes = [view(request).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


# Bad input ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"state": "new"}, "state"),
        ({"level": "high"}, "level"),
        ({"level": str(2**40)}, "level"),
        ({"tag": "two words"}, "tag"),
        ({"tag": "nul\x00"}, "tag"),
        ({"since": "yesterday"}, "since"),
        ({"before": "2024-13-45"}, "before"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "101"}, "page_size"),
        ({"page_size": "lots"}, "page_size"),
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": str(2**70)}, "cursor"),
    ],
)
def test_bad_list_filters_are_a_400_naming_the_field(api_client, query, field):
    response = api_client.get(LIST, query)
    assert response.status_code == 400
    assert field in response.json()


def test_oversize_page_follows_the_views_max(api_client, rf, user):
    class Small(MessageViewSet):
        max_page_size = 5

    request = rf.get("/api/messages/", {"page_size": "6"})
    request.user = user
    response = Small.as_view({"get": "list"})(request)
    assert response.status_code == 400
    assert "page_size" in response.data


@pytest.mark.parametrize("bad_id", ["abc", "-1", str(2**64), "0"])
def test_non_integer_ids_in_the_path_are_a_400(api_client, bad_id):
    response = api_client.get(f"/api/messages/{bad_id}/")
    assert response.status_code == 400
    assert "id" in response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "non_field_errors"),
        ({"ids": [1], "before": 1}, "non_field_errors"),
        ({"ids": []}, "ids"),
        ({"ids": ["one"]}, "ids"),
        ({"ids": [2**64]}, "ids"),
        ({"ids": "1"}, "ids"),
        ({"before": "last tuesday"}, "before"),
        ({"before": -3}, "before"),
        ({"before": True}, "before"),
        ({"before": [1]}, "before"),
    ],
)
def test_bad_bulk_read_is_a_400(api_client, user, body, field):
    entry = send(user)
    response = api_client.post("/api/messages/read/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert pigeonhole.unread_count(user) == 1
    assert entry.id


def test_malformed_json_is_a_400(api_client):
    response = api_client.post(
        "/api/messages/read/", data='{"ids": [1,', content_type="application/json"
    )
    assert response.status_code == 400
    assert "detail" in response.json()


@pytest.fixture
def sender(api_client, user):
    user.user_permissions.add(Permission.objects.get(codename="add_message"))
    return api_client


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "hi"}, "users"),
        ({"users": [], "groups": [], "message": "hi"}, "users"),
        ({"users": [10**9], "message": "hi"}, "users"),
        ({"groups": [10**9], "message": "hi"}, "groups"),
        ({"users": ["bob"], "message": "hi"}, "users"),
        ({"users": "{other}", "message": "hi"}, "users"),
        ({"users": ["{other}"]}, "message"),
        ({"users": ["{other}"], "message": "   "}, "message"),
        ({"users": ["{other}"], "message": "x" * 10_001}, "message"),
        ({"users": ["{other}"], "message": "nul \x00"}, "message"),
        ({"users": ["{other}"], "message": "hi", "level": "loud"}, "level"),
        ({"users": ["{other}"], "message": "hi", "level": 2**40}, "level"),
        ({"users": ["{other}"], "message": "hi", "url": "javascript:alert(1)"}, "url"),
        ({"users": ["{other}"], "message": "hi", "url": "/\\evil.example"}, "url"),
        ({"users": ["{other}"], "message": "hi", "subject": "s" * 256}, "subject"),
        ({"users": ["{other}"], "message": "hi", "extra_tags": ["two words"]}, "extra_tags"),
        ({"users": ["{other}"], "message": "hi", "data": {"k": "\x00"}}, "data"),
        ({"users": ["{other}"], "message": "hi", "data": {"k": [{"\x00": 1}]}}, "data"),
        ({"users": ["{other}"], "message": "hi", "extra_tags": ["a\x00b"]}, "extra_tags"),
        ({"users": ["{other}"], "message": "hi", "expires": "2001-01-01T00:00:00Z"}, "expires"),
    ],
)
def test_bad_sends_are_a_400_naming_the_field(sender, other_user, body, field):
    body = {
        key: [other_user.pk if item == "{other}" else item for item in value]
        if isinstance(value, list)
        else value
        for key, value in body.items()
    }
    response = sender.post(LIST, body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert pigeonhole.inbox(other_user, state="all") == []


def test_text_over_max_length_follows_the_setting(sender, other_user, settings):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "MAX_LENGTH": 5}
    body = {"users": [other_user.pk], "message": "sixsix"}
    response = sender.post(LIST, body, format="json")
    assert response.status_code == 400
    assert "message" in response.json()
    body["message"] = "five!"
    assert sender.post(LIST, body, format="json").status_code == 201


def nested(depth):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("data", "setting"),
    [
        ({"blob": "x" * 2_400_000}, "MAX_DATA_BYTES"),
        ({"blob": "x" * 8200}, "MAX_DATA_BYTES"),
        (nested(21), "MAX_DATA_DEPTH"),
        (nested(90), "MAX_DATA_DEPTH"),
    ],
)
def test_oversize_data_is_a_400_naming_the_limit(store, sender, user, other_user, data, setting):
    pigeonhole.send(user, "question", from_user=other_user)
    question = pigeonhole.inbox(user)[0]
    sent = sender.post(LIST, {"users": [other_user.pk], "message": "hi", "data": data}, "json")
    replied = sender.post(f"{LIST}{question.id}/reply/", {"message": "hi", "data": data}, "json")
    for response in (sent, replied):
        assert response.status_code == 400
        assert setting in response.json()["data"][0]
    assert pigeonhole.inbox(other_user, state="all") == []
