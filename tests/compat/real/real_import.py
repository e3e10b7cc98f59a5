"""Rows written by the libraries' own models, moved by ``pigeonhole_import``."""

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.utils import timezone

import pigeonhole
from pigeonhole.models import InboxEntry, Message

pytestmark = pytest.mark.django_db

WHEN = datetime(2021, 6, 7, 8, 9, 10, tzinfo=UTC)


def run(source):
    out = StringIO()
    call_command("pigeonhole_import", "--from", source, stdout=out)
    return out.getvalue()


def test_messages_extends(user, other_user):
    models = pytest.importorskip("messages_extends.models")
    from messages_extends import constants

    kept = models.Message.objects.create(
        user=user, message="Until closed", level=constants.WARNING_PERSISTENT, extra_tags="a b"
    )
    closed = models.Message.objects.create(
        user=other_user, message="Closed", level=constants.INFO_PERSISTENT, extra_tags=""
    )
    closed.read = True
    closed.save()
    models.Message.objects.create(user=None, message="Nobody", level=21, extra_tags="")

    out = run("messages_extends")
    assert "3 rows read, 2 messages written (2 inbox entries), 1 skipped" in out
    (mine,) = pigeonhole.inbox(user)
    assert (mine.message, mine.level, mine.extra_tags, mine.is_read) == (
        "Until closed", 31, "a b", False
    )  # fmt: skip
    assert mine.created == kept.created
    (theirs,) = pigeonhole.inbox(other_user, state="read")
    assert theirs.read_at == closed.modified
    assert "0 messages written" in run("messages_extends")
    assert InboxEntry.objects.count() == 2


def test_drf_messages(user, other_user):
    models = pytest.importorskip("drf_messages.models")

    models.Message.objects.create_user_message(user, "Export ready", 25, ["export", "csv"])
    read = models.Message.objects.create_user_message(other_user, "Old news", 20)
    models.Message.objects.filter(pk=read.pk).update(read_at=WHEN)

    out = run("drf_messages")
    assert "2 messages written (2 inbox entries)" in out
    (mine,) = pigeonhole.inbox(user)
    assert (mine.message, mine.level, mine.extra_tags) == ("Export ready", 25, "csv export")
    (theirs,) = pigeonhole.inbox(other_user, state="read")
    assert theirs.read_at == WHEN
    assert "skipped 2: already imported" in run("drf_messages")


def test_notifications(user, other_user):
    pytest.importorskip("notifications.models")
    from notifications.models import Notification
    from notifications.signals import notify

    team = Group.objects.create(name="core team")
    notify.send(
        other_user, recipient=user, verb="invited you to", target=team, level="warning",
        url="/teams/1/",
    )  # fmt: skip
    notify.send(other_user, recipient=user, verb="waved", description="Hello there")
    notify.send(team, recipient=other_user, verb="was archived")
    notify.send(user, recipient=user, verb="Commented on!", target=team)
    waved = Notification.objects.get(verb="waved")
    waved.mark_as_read()
    Notification.objects.filter(verb="was archived").update(deleted=True, timestamp=timezone.now())

    out = run("notifications")
    assert "4 rows read, 3 messages written" in out and "skipped 1: deleted (soft delete)" in out
    # The two notifications about the team are one thread, shown by its newest.
    comment, hello = pigeonhole.inbox(user, state="all")
    assert (comment.message, comment.reason, comment.count) == (
        "alice Commented on! core team", "commented-on", 2
    )  # fmt: skip
    assert comment.thread == f"auth.group:{team.pk}"
    assert comment.senders == [user.pk, other_user.pk]
    invite, _ = pigeonhole.thread_messages(user, comment)
    assert invite.reason == "invited-you-to"
    assert (invite.message, invite.level, invite.from_user_id) == (
        "bob invited you to core team", 31, other_user.pk
    )  # fmt: skip
    assert (invite.url, invite.is_read) == ("/teams/1/", False)
    assert (invite.target_object_id, invite.data["verb"]) == (str(team.pk), "invited you to")
    assert (hello.subject, hello.message, hello.is_read) == ("bob waved", "Hello there", True)
    assert Message.objects.filter(data__imported_from__startswith="notifications:").count() == 3
    assert "0 messages written" in run("notifications")
