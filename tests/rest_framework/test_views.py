"""The messages endpoints against real stores: what each answers, and to whom."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

import pigeonhole
from pigeonhole.representation import FIELDS, message_to_dict, senders_for

pytestmark = pytest.mark.django_db

LIST = "/api/messages/"


def detail(entry_id, action=""):
    return f"/api/messages/{entry_id}/" + (f"{action}/" if action else "")


def inbox_ids(user, state="all"):
    return [entry.id for entry in pigeonhole.inbox(user, state=state)]


def send(user, text="hello", **options):
    pigeonhole.send(user, text, **options)
    return pigeonhole.inbox(user, state="all", limit=1)[0]


# Reading --------------------------------------------------------------------
def test_urls_are_namespaced():
    assert reverse("pigeonhole_api:message-list") == LIST
    assert reverse("pigeonhole_api:message-detail", args=[5]) == detail(5)
    assert reverse("pigeonhole_api:message-count") == "/api/messages/count/"
    assert reverse("pigeonhole_api:message-read-all") == "/api/messages/read/"
    assert reverse("pigeonhole_api:message-read", args=[5]) == detail(5, "read")


def test_list_shows_the_users_unread_messages_newest_first(store, api_client, user, other_user):
    older = send(user, "older", level=pigeonhole.PERSISTENT_WARNING, from_user=other_user)
    send(user, "newer")
    send(other_user, "not yours")
    response = api_client.get(LIST)
    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    assert [m["message"] for m in body["results"]] == ["newer", "older"]
    first = body["results"][1]
    assert tuple(first) == FIELDS
    assert first["id"] == older.id
    assert (first["level"], first["level_tag"]) == (pigeonhole.PERSISTENT_WARNING, "warning")
    assert first["from_user"] == {"id": other_user.pk, "username": "bob", "name": "bob"}


def test_list_renders_exactly_what_the_stream_sends(store, api_client, user, other_user):
    send(user, "<b>not html</b>", subject="s", url="/x/", data={"k": [1]}, from_user=other_user)
    [entry] = pigeonhole.inbox(user)
    expected = message_to_dict(entry, senders_for([entry]))
    assert api_client.get(LIST).json()["results"] == [expected]
    assert api_client.get(detail(entry.id)).json() == expected
    assert expected["message"] == "<b>not html</b>"  # text, never escaped or marked safe


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["unread-info"]),
        ("?state=read", ["read-error"]),
        ("?state=all", ["unread-info", "read-error"]),
        ("?state=archived", ["archived"]),
        ("?state=all&level=40", ["read-error"]),
        ("?state=all&tag=billing", ["unread-info"]),
    ],
)
def test_list_filters(store, api_client, user, query, expected):
    archived = send(user, "archived")
    pigeonhole.archive(user, archived)
    read = send(user, "read-error", level=pigeonhole.PERSISTENT_ERROR)
    pigeonhole.mark_read(user, read)
    send(user, "unread-info", extra_tags=["billing"])
    response = api_client.get(LIST + query)
    assert response.status_code == 200, response.json()
    assert [m["message"] for m in response.json()["results"]] == expected


def test_list_filters_by_creation_time(store, api_client, user):
    send(user, "one")
    middle = timezone.now()
    send(user, "two")
    since = api_client.get(LIST, {"since": middle.isoformat()}).json()["results"]
    before = api_client.get(LIST, {"before": middle.isoformat()}).json()["results"]
    assert [m["message"] for m in since] == ["two"]
    assert [m["message"] for m in before] == ["one"]


def test_cursor_pages_walk_the_whole_inbox_once(store, api_client, user):
    for i in range(7):
        send(user, f"m{i}")
    seen, url = [], LIST + "?page_size=3"
    while url:
        body = api_client.get(url).json()
        seen += [m["message"] for m in body["results"]]
        url = body["next"]
    assert seen == [f"m{i}" for i in reversed(range(7))]


def test_a_message_arriving_between_pages_is_not_repeated_or_skipped(store, api_client, user):
    for i in range(4):
        send(user, f"m{i}")
    first = api_client.get(LIST, {"page_size": 2}).json()
    send(user, "late")
    second = api_client.get(first["next"]).json()
    assert [m["message"] for m in second["results"]] == ["m1", "m0"]


def test_retrieve(store, api_client, user):
    entry = send(user, "hello")
    response = api_client.get(detail(entry.id))
    assert response.status_code == 200
    assert response.json()["message"] == "hello"


def test_count_gives_unread_and_the_highest_unread_level(store, api_client, user, other_user):
    assert api_client.get("/api/messages/count/").json() == {
        "unread": 0,
        "unseen": 0,
        "max_level": None,
        "max_level_tag": None,
    }
    send(user, "info")
    error = send(user, "error", level=pigeonhole.PERSISTENT_ERROR)
    send(other_user, "theirs", level=pigeonhole.PERSISTENT_ERROR + 50)
    body = api_client.get("/api/messages/count/").json()
    assert body == {"unread": 2, "unseen": 2, "max_level": 41, "max_level_tag": "error"}
    pigeonhole.mark_read(user, error)
    body = api_client.get("/api/messages/count/").json()
    assert body == {"unread": 1, "unseen": 1, "max_level": pigeonhole.INFO, "max_level_tag": "info"}


# Changing state -------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "field", "set_up"),
    [
        ("read", "read_at", None),
        ("unread", "read_at", pigeonhole.mark_read),
        ("archive", "archived_at", None),
        ("unarchive", "archived_at", pigeonhole.archive),
    ],
)
def test_actions_change_one_message_and_return_it(store, api_client, user, action, field, set_up):
    entry = send(user)
    other = send(user, "untouched")
    if set_up:
        set_up(user, [entry.id, other.id])
    before = api_client.get(detail(other.id)).json()
    response = api_client.post(detail(entry.id, action))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == entry.id
    assert (body[field] is None) == action.startswith("un")
    assert api_client.get(detail(other.id)).json() == before


def test_read_with_delete_read_answers_no_content(store, api_client, user, settings):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "DELETE_READ": True}
    entry = send(user)
    response = api_client.post(detail(entry.id, "read"))
    assert response.status_code == 204
    assert inbox_ids(user) == []


def test_bulk_read_by_ids(store, api_client, user):
    a, b, c = (send(user, t) for t in "abc")
    response = api_client.post("/api/messages/read/", {"ids": [a.id, c.id]}, format="json")
    assert response.status_code == 200
    assert response.json() == {"changed": 2, "unread": 1}
    assert inbox_ids(user, "unread") == [b.id]


def test_bulk_read_with_a_foreign_id_changes_nothing(store, api_client, user, other_user):
    mine, theirs = send(user), send(other_user)
    response = api_client.post("/api/messages/read/", {"ids": [mine.id, theirs.id]}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["ids"]
    assert inbox_ids(user, "unread") == [mine.id]
    assert inbox_ids(other_user, "unread") == [theirs.id]


def test_bulk_read_before_an_id_keeps_later_messages_unread(store, api_client, user):
    _, b, c = (send(user, t) for t in "abc")
    response = api_client.post("/api/messages/read/", {"before": b.id}, format="json")
    assert response.json() == {"changed": 2, "unread": 1}
    assert inbox_ids(user, "unread") == [c.id]


def test_bulk_read_before_a_time_keeps_later_messages_unread(store, api_client, user):
    a = send(user, "a")
    watermark = timezone.now()
    b = send(user, "b")
    response = api_client.post(
        "/api/messages/read/", {"before": watermark.isoformat()}, format="json"
    )
    assert response.json() == {"changed": 1, "unread": 1}
    assert inbox_ids(user, "unread") == [b.id]
    assert a.id not in inbox_ids(user, "unread")


@pytest.mark.parametrize(
    ("before", "status"),
    [("0400-01-01T00:00:00+23:00", 200), ("0001-01-01T00:00:00+05:00", 400)],
)
def test_bulk_read_takes_any_offset_python_parses(store, api_client, user, before, status):
    send(user)
    response = api_client.post("/api/messages/read/", {"before": before}, format="json")
    assert response.status_code == status, response.content
    assert inbox_ids(user, "unread") != []  # nothing that old


def test_delete_refuses_unread_messages(store, api_client, user):
    entry = send(user)
    response = api_client.delete(detail(entry.id))
    assert response.status_code == 403
    assert "unread" in response.json()["detail"]
    pigeonhole.mark_read(user, entry)
    assert api_client.delete(detail(entry.id)).status_code == 204
    assert inbox_ids(user) == []


def test_delete_unread_when_allowed(store, api_client, user, settings):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "ALLOW_DELETE_UNREAD": True}
    entry = send(user)
    assert api_client.delete(detail(entry.id)).status_code == 204
    assert inbox_ids(user) == []


# Writing --------------------------------------------------------------------
def test_reply_goes_to_the_sender(store, api_client, user, other_user):
    entry = send(user, "question", subject="Order", from_user=other_user)
    response = api_client.post(detail(entry.id, "reply"), {"message": "answer"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["recipient_count"] == 1
    [answer] = pigeonhole.inbox(other_user)
    assert (answer.message, answer.subject, answer.from_user_id) == ("answer", "Re: Order", user.pk)


def test_reply_to_a_message_without_sender_is_a_400(store, api_client, user):
    entry = send(user)
    response = api_client.post(detail(entry.id, "reply"), {"message": "hi"}, format="json")
    assert response.status_code == 400
    assert "sender" in response.json()["non_field_errors"][0]


def test_send_needs_the_add_message_permission(store, api_client, user, other_user):
    body = {"users": [other_user.pk], "message": "hi"}
    assert api_client.post(LIST, body, format="json").status_code == 403
    assert inbox_ids(other_user) == []
    user.user_permissions.add(Permission.objects.get(codename="add_message"))
    response = api_client.post(LIST, body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["recipient_count"] == 1
    [entry] = pigeonhole.inbox(other_user)
    assert (entry.message, entry.from_user_id) == ("hi", user.pk)


def test_send_to_groups_and_users(store, api_client, user, other_user, group, django_user_model):
    user.user_permissions.add(Permission.objects.get(codename="add_message"))
    carol = django_user_model.objects.create_user("carol")
    response = api_client.post(
        LIST,
        {
            "groups": [group.pk],
            "users": [carol.pk, user.pk],
            "message": "all hands",
            "level": pigeonhole.WARNING,
            "subject": "Meeting",
            "url": "/meet/",
            "data": {"room": 4},
            "extra_tags": ["urgent"],
            "expires": (timezone.now() + timedelta(days=1)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["recipient_count"] == 3
    [entry] = pigeonhole.inbox(carol)
    assert (entry.subject, entry.url, entry.data, entry.extra_tags) == (
        "Meeting",
        "/meet/",
        {"room": 4},
        "urgent",
    )
    assert entry.expires is not None
