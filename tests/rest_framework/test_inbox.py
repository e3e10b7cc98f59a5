"""The REST API of threads, reasons, seen, saved, mute and the personal-data export."""

import pytest

import pigeonhole

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store")]


def texts(response):
    return [item["message"] for item in response.json()["results"]]


def test_reason_and_saved_filter_the_list(api_client, user):
    pigeonhole.send(user, "mentioned", reason="mention")
    pigeonhole.send(user, "plain")
    assert texts(api_client.get("/api/messages/?reason=mention")) == ["mentioned"]
    answer = api_client.get("/api/messages/?reason=Not%20a%20slug")
    assert answer.status_code == 400 and "reason" in answer.json()
    [plain] = pigeonhole.inbox(user, limit=1)
    assert api_client.post(f"/api/messages/{plain.id}/save/").status_code == 200
    assert texts(api_client.get("/api/messages/?state=saved")) == ["plain"]
    assert api_client.post(f"/api/messages/{plain.id}/unsave/").status_code == 200
    assert texts(api_client.get("/api/messages/?state=saved")) == []


def test_a_saved_message_cannot_be_deleted(api_client, user, settings):
    pigeonhole.send(user, "keep")
    [entry] = pigeonhole.inbox(user)
    pigeonhole.mark_read(user, entry)
    api_client.post(f"/api/messages/{entry.id}/save/")
    answer = api_client.delete(f"/api/messages/{entry.id}/")
    assert answer.status_code == 403 and "Unsave it first" in answer.json()["detail"]


def test_seen_and_the_counts(api_client, user):
    for text in "ab":
        pigeonhole.send(user, text)
    assert api_client.get("/api/messages/count/").json()["unseen"] == 2
    newest = pigeonhole.inbox(user)[0]
    answer = api_client.post("/api/messages/seen/", {"before": newest.id - 1}, format="json")
    assert answer.json() == {"changed": 1, "unseen": 1}
    assert api_client.post("/api/messages/seen/", {}, format="json").json()["unseen"] == 0
    count = api_client.get("/api/messages/count/").json()
    assert (count["unread"], count["unseen"]) == (2, 0)
    assert api_client.get("/messages/count/").json()["unseen"] == 0
    bad = api_client.post("/api/messages/seen/", {"before": "soon"}, format="json")
    assert bad.status_code == 400


def test_mute_and_unmute_a_thread(api_client, user, other_user):
    pigeonhole.send(user, "first", thread="issue:1")
    [row] = pigeonhole.inbox(user)
    answer = api_client.post(f"/api/messages/{row.id}/mute/")
    assert answer.json() == {"thread": "issue:1", "muted": True}
    assert pigeonhole.send([user, other_user], "muted", thread="issue:1").recipient_count == 1
    answer = api_client.post(f"/api/messages/{row.id}/unmute/")
    assert answer.json() == {"thread": "issue:1", "muted": False}
    assert pigeonhole.muted_threads(user) == []
    pigeonhole.send(user, "plain")
    plain = pigeonhole.inbox(user)[0]
    answer = api_client.post(f"/api/messages/{plain.id}/mute/")
    assert answer.status_code == 400 and "no thread" in str(answer.json())
    assert api_client.post("/api/messages/999999/mute/").status_code == 404


def test_export_is_the_users_own_data(api_client, anon_client, user, other_user):
    pigeonhole.send(user, "mine", thread="t")
    pigeonhole.send(other_user, "theirs")
    document = api_client.get("/api/preferences/export/").json()
    assert [e["message"] for e in document["entries"]] == ["mine"]
    assert document["user"]["username"] == "alice"
    assert anon_client.get("/api/preferences/export/").status_code in (401, 403)


def test_marking_seen_changes_the_count_views_etag(api_client, user):
    pigeonhole.send(user, "a")
    for url in ("/messages/count/", "/api/messages/count/"):
        pigeonhole.send(user, "b")
        etag = api_client.get(url)["ETag"]
        assert api_client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
        pigeonhole.mark_seen(user)
        answer = api_client.get(url, HTTP_IF_NONE_MATCH=etag)
        assert answer.status_code == 200 and answer.json()["unseen"] == 0


def test_a_message_carries_its_thread_reason_and_states(api_client, user, other_user):
    pigeonhole.send(user, "one", thread="t", from_user=other_user, reason="mention")
    pigeonhole.send(user, "two", thread="t", from_user=user, reason="comment")
    [row] = pigeonhole.inbox(user)
    pigeonhole.save(user, row)
    pigeonhole.mark_seen(user)
    [item] = api_client.get("/api/messages/").json()["results"]
    assert (item["thread"], item["reason"], item["count"]) == ("t", "comment", 2)
    assert item["senders"] == [user.pk, other_user.pk]
    assert item["seen"] is True and item["saved_at"] is not None
