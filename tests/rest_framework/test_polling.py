"""Cheap polling: validators and 304s without loading messages, and fixed query counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.http import http_date

import pigeonhole

pytestmark = pytest.mark.django_db

LIST = "/api/messages/"
COUNT = "/api/messages/count/"


@pytest.mark.parametrize("path", [LIST, COUNT])
def test_etag_answers_304_until_the_inbox_changes(store, api_client, user, other_user, path):
    pigeonhole.send(user, "one")
    first = api_client.get(path)
    etag = first["ETag"]
    assert first.status_code == 200
    assert first["X-Poll-Interval"] == "30"
    again = api_client.get(path, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert again["X-Poll-Interval"] == "30"
    pigeonhole.send(other_user, "not mine")
    assert api_client.get(path, HTTP_IF_NONE_MATCH=etag).status_code == 304
    pigeonhole.send(user, "two")
    changed = api_client.get(path, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag


def test_list_etag_sees_state_changes_that_keep_the_count(store, api_client, user):
    a = pigeonhole.send(user, "a") and pigeonhole.inbox(user)[0]
    etag = api_client.get(LIST, {"state": "all"})["ETag"]
    pigeonhole.mark_read(user, a)
    response = api_client.get(LIST, {"state": "all"}, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    assert response.json()["results"][0]["read_at"] is not None


def test_etags_differ_per_query_and_per_user(api_client, user, other_user):
    pigeonhole.send([user, other_user], "shared")
    unread = api_client.get(LIST)["ETag"]
    assert api_client.get(LIST, {"state": "all"})["ETag"] != unread
    api_client.force_login(other_user)
    assert api_client.get(LIST, HTTP_IF_NONE_MATCH=unread).status_code == 200


def test_last_modified_answers_if_modified_since(store, api_client, user):
    pigeonhole.send(user, "one")
    response = api_client.get(COUNT)
    stamp = response["Last-Modified"]
    assert response["Cache-Control"] == "private, no-cache"
    assert api_client.get(COUNT, HTTP_IF_MODIFIED_SINCE=stamp).status_code == 304
    earlier = http_date(pigeonhole.inbox(user)[0].created.timestamp() - 10)
    assert api_client.get(COUNT, HTTP_IF_MODIFIED_SINCE=earlier).status_code == 200


def test_poll_interval_is_a_setting(api_client, settings):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "POLL_INTERVAL": 120}
    assert api_client.get(COUNT)["X-Poll-Interval"] == "120"


def _queries(client, path, **extra):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, **extra)
    assert response.status_code in (200, 304)
    return len(captured)


@pytest.mark.parametrize("path", [LIST + "?state=all&page_size=50", COUNT])
def test_list_and_count_cost_a_fixed_number_of_queries(api_client, user, django_user_model, path):
    senders = [django_user_model.objects.create_user(f"s{i}") for i in range(3)]
    pigeonhole.send(user, "first", from_user=senders[0])
    small = _queries(api_client, path)
    for i in range(60):
        pigeonhole.send(user, f"m{i}", from_user=senders[i % 3])
    pigeonhole.mark_all_read(user)
    assert _queries(api_client, path) == small
    # Session and user (2) + state (1) [+ page (1) + senders (1)].
    assert small == (3 if path == COUNT else 5)


def test_a_304_loads_no_messages(api_client, user):
    pigeonhole.send(user, "one")
    etag = api_client.get(LIST)["ETag"]
    with CaptureQueriesContext(connection) as captured:
        assert api_client.get(LIST, HTTP_IF_NONE_MATCH=etag).status_code == 304
    # Session, user, and one aggregate: no message row is read.
    assert len(captured) == 3
    assert "COUNT(" in captured[-1]["sql"].upper()
