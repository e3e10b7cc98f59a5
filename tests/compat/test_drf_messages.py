"""drf-messages' README and endpoints, run against pigeonhole.compat.drf_messages."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.pagination import LimitOffsetPagination

import pigeonhole
from pigeonhole.compat import drf_messages, presets
from pigeonhole.compat.drf_messages.views import MessagesViewSet
from pigeonhole.rest_framework.serializers import MAX_PAGE_SIZE
from tests.compat.conftest import entry_reads

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("store", "site"),
    pytest.mark.urls("tests.compat.site_drf_messages"),
]


@pytest.fixture
def site(settings):
    settings.MESSAGE_STORAGE = "pigeonhole.compat.drf_messages.storage.DBStorage"
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, **presets.DRF_MESSAGES}


def listed(client, **query):
    response = client.get(reverse("drf_messages:messages-list"), query)
    assert response.status_code == 200
    return response.json()


def test_messages_added_in_views_are_listed_with_read_at_null(alice_client):
    alice_client.get("/add/")
    found = listed(alice_client)
    assert [(m["message"], m["level"], m["level_tag"], m["extra_tags"]) for m in found] == [
        ("Export failed", 40, "error", ["export", "urgent"]),
        ("Export ready", 20, "info", []),
    ]
    assert set(found[0]) == {
        "id", "message", "level", "level_tag", "extra_tags", "view", "read_at", "created"
    }  # fmt: skip
    assert all(m["read_at"] is None for m in found)
    # Listing is a GET: it reads nothing.
    assert all(m["read_at"] is None for m in listed(alice_client))


def test_unread_filter_detail_and_read(alice_client, user):
    alice_client.get("/add/")
    newest, oldest = (m["id"] for m in listed(alice_client))
    read = alice_client.post(reverse("drf_messages:messages-read", args=(oldest,)))
    assert read.status_code == 200 and read.json()["read_at"] is not None
    assert [m["id"] for m in listed(alice_client, unread="true")] == [newest]
    assert [m["id"] for m in listed(alice_client, unread="false")] == [oldest]
    detail = alice_client.get(reverse("drf_messages:messages-detail", args=(newest,)))
    assert detail.json()["message"] == "Export failed"


def test_peek_counts_without_reading(alice_client, user):
    empty = alice_client.get(reverse("drf_messages:messages-peek")).json()
    assert empty == {"count": 0, "max_level": None, "max_level_tag": ""}
    alice_client.get("/add/")
    peek = alice_client.get(reverse("drf_messages:messages-peek")).json()
    assert peek == {"count": 2, "max_level": 40, "max_level_tag": "error"}
    assert pigeonhole.unread_count(user) == 2


def test_unread_messages_cannot_be_deleted(alice_client, user):
    drf_messages.create_user_message(user, "Keep me", 20)
    entry = pigeonhole.inbox(user)[0].id
    detail = reverse("drf_messages:messages-detail", args=(entry,))
    assert alice_client.delete(detail).status_code == 403
    alice_client.post(reverse("drf_messages:messages-read-all"))
    assert alice_client.delete(detail).status_code == 204
    assert pigeonhole.inbox(user, state="all") == []


def test_allow_delete_unread_setting(alice_client, user, settings):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "ALLOW_DELETE_UNREAD": True}
    drf_messages.create_user_message(user, "Go away", 30, ["a", "b"])
    entry = pigeonhole.inbox(user)[0]
    assert entry.extra_tags == "a b"
    detail = reverse("drf_messages:messages-detail", args=(entry.id,))
    assert alice_client.delete(detail).status_code == 204


def test_other_users_messages_are_invisible(alice_client, user, other_user):
    drf_messages.create_user_message(other_user, "Bob's", 20)
    theirs = pigeonhole.inbox(other_user)[0].id
    assert listed(alice_client) == []
    for response in (
        alice_client.get(reverse("drf_messages:messages-detail", args=(theirs,))),
        alice_client.post(reverse("drf_messages:messages-read", args=(theirs,))),
        alice_client.delete(reverse("drf_messages:messages-detail", args=(theirs,))),
    ):
        assert response.status_code == 404
    assert pigeonhole.unread_count(other_user) == 1


def test_anonymous_and_csrf(client, csrf_client, user):
    drf_messages.create_user_message(user, "Guarded", 20)
    entry = pigeonhole.inbox(user)[0].id
    assert client.get(reverse("drf_messages:messages-list")).status_code == 403
    assert csrf_client.post(reverse("drf_messages:messages-read", args=(entry,))).status_code == 403
    assert csrf_client.post(reverse("drf_messages:messages-read-all")).status_code == 403
    assert pigeonhole.unread_count(user) == 1


def test_create_message_for_the_request_user(rf, user):
    from django.contrib.sessions.backends.db import SessionStore

    from pigeonhole.compat.drf_messages.storage import DBStorage

    request = rf.get("/")
    request.user, request.session = user, SessionStore()
    request._messages = DBStorage(request)
    drf_messages.create_message(request, "Saved", 25, ["form"])
    assert [(m.message, m.extra_tags) for m in request._messages.get_unread_queryset()] == [
        ("Saved", "form")
    ]
    assert len(request._messages.get_queryset()) == 1


# Token-only APIs: no sessions at all, as drf-messages allowed ----------------------------

#: A stack without SessionMiddleware, hence without AuthenticationMiddleware: DRF's token
#: authentication is the only way in.
TOKEN_ONLY = [
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]


@pytest.fixture
def token_client(settings, user):
    from rest_framework.authtoken.models import Token

    settings.MIDDLEWARE = TOKEN_ONLY
    return Client(headers={"Authorization": f"Token {Token.objects.create(user=user).key}"})


def test_without_sessions_messages_are_stored_and_listed(token_client, user):
    assert token_client.post("/api-add/").json() == {"added": 2}
    assert [m["message"] for m in listed(token_client)] == ["Saved", "Export ready"]
    peek = token_client.get(reverse("drf_messages:messages-peek")).json()
    assert peek == {"count": 2, "max_level": 25, "max_level_tag": "success"}
    read = token_client.post(reverse("drf_messages:messages-read-all"))
    assert (read.status_code, read.json()) == (200, {"count": 2})
    assert pigeonhole.unread_count(user) == 0
    assert Client().get(reverse("drf_messages:messages-list")).status_code == 403


def test_without_sessions_a_sticky_message_names_the_missing_middleware(token_client, user):
    with pytest.raises(ImproperlyConfigured, match="SessionMiddleware"):
        token_client.post("/api-add-sticky/")
    assert pigeonhole.unread_count(user) == 0


def test_without_sessions_closing_a_sticky_message_finds_nothing_to_close(token_client):
    response = token_client.post(reverse("pigeonhole:close_sticky", args=("abc",)))
    assert response.status_code == 302  # nothing was open: no error, no 500


def test_without_sessions_plain_pages_still_flash_by_cookie(settings):
    settings.MIDDLEWARE = TOKEN_ONLY
    anonymous = Client()
    assert anonymous.get("/add/").status_code == 200  # an anonymous user's messages: flashed
    assert "messages" in anonymous.cookies


def test_in_accepts_text_levels_and_messages_and_refuses_other_types(rf, user):
    from django.contrib.messages.storage.base import Message

    from pigeonhole.compat.drf_messages.storage import DBStorage

    request = rf.get("/")
    request.user = user  # and no session: the storage needs none
    storage = DBStorage(request)
    drf_messages.create_user_message(user, "Hello world!", 20)
    assert "Hello world!" in storage and "Goodbye world!" not in storage
    assert 20 in storage and 30 not in storage
    assert Message(20, "Hello world!") in storage
    with pytest.raises(ValueError, match="list"):
        [] in storage  # noqa: B015
    assert not storage.used


@pytest.mark.parametrize(
    ("name", "args", "post_fields"),
    [
        ("messages-list", (), None),
        ("messages-detail", (1,), None),
        ("messages-peek", (), None),
        ("messages-read", (1,), {}),
        ("messages-read-all", (), {}),
    ],
)
def test_options_describes_each_route(alice_client, name, args, post_fields):
    response = alice_client.options(reverse(f"drf_messages:{name}", args=args))
    assert response.status_code == 200
    assert response.json()["name"]
    # The POST routes take no body, and say so.
    assert response.json().get("actions", {}).get("POST") == post_fields


def test_list_reads_one_page_at_most(alice_client, user, crowded_inbox, store):
    with CaptureQueriesContext(connection) as queries:
        found = listed(alice_client)
    assert len(found) == MAX_PAGE_SIZE
    assert found[0]["message"] == f"m{crowded_inbox - 1}"
    if store == "db":
        assert entry_reads(queries) and max(entry_reads(queries)) <= MAX_PAGE_SIZE + 1
    assert [m["message"] for m in listed(alice_client, limit=3)] == [
        f"m{crowded_inbox - 1}", f"m{crowded_inbox - 2}", f"m{crowded_inbox - 3}"
    ]  # fmt: skip
    assert len(listed(alice_client, limit=MAX_PAGE_SIZE, unread="true")) == MAX_PAGE_SIZE
    pigeonhole.mark_all_read(user)
    assert len(listed(alice_client, unread="false")) == MAX_PAGE_SIZE
    assert len(listed(alice_client, unread="false", limit=5)) == 5


@pytest.mark.parametrize("limit", ["0", "-1", str(MAX_PAGE_SIZE + 1), "ten", "1.5"])
def test_bad_limit_is_a_400_naming_it(alice_client, limit):
    response = alice_client.get(reverse("drf_messages:messages-list"), {"limit": limit})
    assert response.status_code == 400
    assert "limit" in response.json()


def test_default_pagination_class_pages_without_reading_everything(
    alice_client, crowded_inbox, store, monkeypatch
):
    monkeypatch.setattr(MessagesViewSet, "pagination_class", LimitOffsetPagination)
    with CaptureQueriesContext(connection) as queries:
        response = alice_client.get(
            reverse("drf_messages:messages-list"), {"limit": 2, "offset": 3}
        )
    page = response.json()
    assert page["count"] == crowded_inbox
    assert [m["message"] for m in page["results"]] == [
        f"m{crowded_inbox - 4}", f"m{crowded_inbox - 5}"
    ]  # fmt: skip
    if store == "db":
        assert max(entry_reads(queries)) <= 5 + 1
    # A limit over the cap is cut to it, as LimitOffsetPagination cuts to its max_limit.
    huge = alice_client.get(reverse("drf_messages:messages-list"), {"limit": 10**6}).json()
    assert len(huge["results"]) == MAX_PAGE_SIZE


@pytest.mark.parametrize("pk", ["99999999999999999999999", "²", "0"])
def test_ids_no_database_holds_are_not_found(alice_client, pk):
    for method, name in (("get", "detail"), ("delete", "detail"), ("post", "read")):
        url = reverse(f"drf_messages:messages-{name}", args=(pk,))
        assert getattr(alice_client, method)(url).status_code == 404
