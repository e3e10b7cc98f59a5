"""
The public API of the GitHub-style inbox: threads, reasons, seen, saved, mute, export.

The rules themselves are the backend contract's (tests/backends/contract.py);
these tests cover what ``pigeonhole`` adds: argument checks, thread keys from
model instances and targets, the async twins and the export document.
"""

import json

import pytest
from asgiref.sync import async_to_sync

import pigeonhole
from pigeonhole.exceptions import InvalidMessage, MessageNotFound, PersistenceUnavailable

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store")]


def texts(entries):
    return [str(entry) for entry in entries]


def test_a_thread_given_as_a_model_instance_or_true_for_the_target(user, other_user):
    pigeonhole.send(user, "by instance", thread=other_user)
    pigeonhole.send(user, "by target", target=other_user, thread=True)
    [row] = pigeonhole.inbox(user)
    assert (str(row), row.thread, row.count) == ("by target", f"auth.user:{other_user.pk}", 2)
    pigeonhole.send(user, "by key", thread="auth.user:" + str(other_user.pk))
    [row] = pigeonhole.inbox(user)
    assert row.count == 3
    assert texts(pigeonhole.thread_messages(user, row.id)) == [
        "by instance",
        "by target",
        "by key",
    ]


@pytest.mark.parametrize(
    ("thread", "match"),
    [
        ("", "1 to 200 characters"),
        ("x" * 201, "1 to 200 characters"),
        (False, "1 to 200 characters"),
        (5, "1 to 200 characters"),
        (True, "pass target= too"),
        ("a\x00b", "NUL"),
    ],
)
def test_a_bad_thread_is_refused_with_the_fix(user, thread, match):
    with pytest.raises(InvalidMessage, match=match):
        pigeonhole.send(user, "x", thread=thread)
    assert pigeonhole.inbox(user, state="all") == []


def test_an_unsaved_instance_is_no_thread(user, django_user_model):
    with pytest.raises(InvalidMessage, match="save it first"):
        pigeonhole.send(user, "x", thread=django_user_model(username="ghost"))


@pytest.mark.parametrize("reason", ["Mention", "a b", "x" * 33, "é", 3])
def test_a_bad_reason_is_refused_by_send_and_inbox(user, reason):
    with pytest.raises(InvalidMessage, match="reason must be"):
        pigeonhole.send(user, "x", reason=reason)
    with pytest.raises(InvalidMessage, match="reason must be"):
        pigeonhole.inbox(user, reason=reason)


def test_reason_filters_the_inbox(user):
    pigeonhole.send(user, "mentioned", reason="mention")
    pigeonhole.send(user, "assigned", reason="review_requested")
    assert texts(pigeonhole.inbox(user, reason="mention")) == ["mentioned"]
    assert texts(pigeonhole.inbox(user, reason="review_requested")) == ["assigned"]


def test_seen_saved_and_their_counts(user, other_user):
    for text in "abc":
        pigeonhole.send(user, text)
    assert pigeonhole.unseen_count(user) == 3
    first = pigeonhole.inbox(user)[-1]
    assert pigeonhole.mark_seen(user, before=first.id) == 1
    assert pigeonhole.unseen_count(user) == 2
    assert pigeonhole.mark_seen(user) == 2
    assert pigeonhole.unread_count(user) == 3
    assert pigeonhole.save(user, [first]) == 1
    assert pigeonhole.inbox_counts(user)["saved"] == 1
    assert texts(pigeonhole.inbox(user, state="saved")) == ["a"]
    with pytest.raises(MessageNotFound):
        pigeonhole.save(other_user, first.id)
    assert pigeonhole.unsave(user, first.id) == 1
    assert pigeonhole.unseen_count(None) == 0
    assert pigeonhole.inbox_counts(None) == {"unread": 0, "all": 0, "archived": 0, "saved": 0}


def test_mute_by_key_instance_or_message(user, other_user):
    pigeonhole.send(user, "first", thread=other_user)
    [row] = pigeonhole.inbox(user)
    assert pigeonhole.mute(user, row) is True
    assert pigeonhole.mute(user, other_user) is False
    assert pigeonhole.muted_threads(user) == [f"auth.user:{other_user.pk}"]
    sent = pigeonhole.send([user, other_user], "muted", thread=other_user)
    assert sent.recipient_count == 1
    assert texts(pigeonhole.inbox(user)) == ["first"]
    assert pigeonhole.unmute(user, f"auth.user:{other_user.pk}") is True
    assert pigeonhole.muted_threads(user) == []
    plain = pigeonhole.send(user, "plain")
    with pytest.raises(InvalidMessage, match="in no thread"):
        pigeonhole.mute(user, pigeonhole.inbox(user)[0])
    assert plain.recipient_count == 1
    with pytest.raises(PersistenceUnavailable):
        pigeonhole.mute(None, "t")
    assert pigeonhole.muted_threads(None) == []


def test_export_user_is_json_with_entries_history_preferences_and_mutes(user, other_user):
    from pigeonhole.categories import set_preference

    pigeonhole.send(user, "one", thread="t", from_user=other_user, reason="mention")
    pigeonhole.send(user, "two", thread="t", subject="S", data={"k": [1]})
    pigeonhole.send(other_user, "not mine")
    pigeonhole.mute(user, "other")
    [row] = pigeonhole.inbox(user)
    pigeonhole.save(user, row)
    set_preference(user, "", "email", False)
    document = json.loads(json.dumps(pigeonhole.export_user(user)))
    assert document["user"] == {"id": user.pk, "username": "alice"}
    entries = document["entries"]
    assert [e["message"] for e in entries] == ["one", "two"]
    assert (entries[0]["reason"], entries[0]["from_user_id"]) == ("mention", other_user.pk)
    assert (entries[1]["subject"], entries[1]["data"], entries[1]["count"]) == ("S", {"k": [1]}, 2)
    assert entries[1]["saved_at"] is not None and entries[1]["thread"] == "t"
    assert document["muted_threads"] == ["other"]
    assert [(p["category"], p["channel"], p["enabled"]) for p in document["preferences"]] == [
        ("", "email", False)
    ]


def test_async_twins(user):
    pigeonhole.send(user, "a", thread="t")
    assert async_to_sync(pigeonhole.aunseen_count)(user) == 1
    assert async_to_sync(pigeonhole.amark_seen)(user) == 1
    [row] = pigeonhole.inbox(user, state="all")
    assert async_to_sync(pigeonhole.asave)(user, row) == 1
    assert async_to_sync(pigeonhole.aunsave)(user, row) == 1
    assert texts(async_to_sync(pigeonhole.athread_messages)(user, row)) == ["a"]
    assert async_to_sync(pigeonhole.amute)(user, "t") is True
    assert async_to_sync(pigeonhole.amuted_threads)(user) == ["t"]
    assert async_to_sync(pigeonhole.aunmute)(user, "t") is True
    assert async_to_sync(pigeonhole.aexport_user)(user)["entries"][0]["message"] == "a"


def test_listeners_of_a_send_hear_of_no_recipient_who_muted_the_thread(
    user, other_user, django_user_model, django_capture_on_commit_callbacks
):
    from pigeonhole import signals

    heard = []

    def listener(sender, message, recipients, **kwargs):
        heard.append(sorted(pk for chunk in recipients.iter_ids() for pk in chunk))

    pigeonhole.mute(user, "t")
    signals.message_sent.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            pigeonhole.send([user, other_user], "by ids", thread="t")
            pigeonhole.send(django_user_model.objects.all(), "by query", thread="t")
            pigeonhole.send([user, other_user], "elsewhere", thread="u")
    finally:
        signals.message_sent.disconnect(listener)
    assert heard == [[other_user.pk], [other_user.pk], sorted([user.pk, other_user.pk])]
