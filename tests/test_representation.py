"""The JSON shape shared by the REST API and the event stream."""

import json
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

import pigeonhole
from pigeonhole.representation import (
    FIELDS,
    asenders_for,
    message_to_dict,
    senders_for,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store")]


def test_every_field_is_present_and_the_whole_dict_is_json(user, other_user):
    other_user.first_name, other_user.last_name = "Bob", "Builder"
    other_user.save()
    expires = timezone.now() + timedelta(days=1)
    pigeonhole.send(
        user,
        "Disk <b>full</b>",
        level=pigeonhole.WARNING,
        subject="Storage",
        url="/disk/",
        data={"pct": 97},
        from_user=other_user,
        extra_tags="ops",
        expires=expires,
    )
    (entry,) = pigeonhole.inbox(user)
    data = message_to_dict(entry, senders_for([entry]))
    assert tuple(data) == FIELDS
    assert json.loads(json.dumps(data)) == data
    assert data["id"] == entry.id
    assert data["level_tag"] == "warning"
    assert data["tags"] == "ops warning persistent"
    assert data["message"] == "Disk <b>full</b>"
    assert data["data"] == {"pct": 97}
    assert data["from_user"] == {"id": other_user.pk, "username": "bob", "name": "Bob Builder"}
    assert data["read_at"] is None and data["archived_at"] is None
    assert data["created"] == entry.created.isoformat()
    assert data["expires"] == entry.expires.isoformat()


def test_senders_load_in_one_query_and_the_email_never_leaks(
    user, other_user, django_assert_num_queries
):
    for i in range(5):
        pigeonhole.send(user, f"m{i}", from_user=other_user)
    pigeonhole.send(user, "system")
    entries = pigeonhole.inbox(user)
    with django_assert_num_queries(1):
        senders = senders_for(entries)
    assert senders == async_to_sync(asenders_for)(entries)
    rendered = [message_to_dict(m, senders) for m in entries]
    assert "bob@example.com" not in json.dumps(rendered)
    assert rendered[0]["from_user"] is None  # newest first: the system message
    assert {r["from_user"]["name"] for r in rendered[1:]} == {"bob"}


def test_without_senders_only_the_id_is_known(user, other_user, django_assert_num_queries):
    pigeonhole.send(user, "hi", from_user=other_user)
    (entry,) = pigeonhole.inbox(user)
    with django_assert_num_queries(0):
        data = message_to_dict(entry)
    assert data["from_user"] == {"id": other_user.pk, "username": None, "name": None}


def test_a_deleted_sender_reads_as_no_sender(user, other_user):
    pigeonhole.send(user, "hi", from_user=other_user)
    (entry,) = pigeonhole.inbox(user)
    other_user.delete()
    assert message_to_dict(entry, senders_for([entry]))["from_user"] is None
