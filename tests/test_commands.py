"""The pigeonhole_send and pigeonhole_purge management commands."""

import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test.utils import override_settings
from django.utils import timezone

import pigeonhole
from pigeonhole.models import InboxEntry, Message

from .timing import expire_in_the_past

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store")]


def run(*args, **options):
    """Call the command and return what it printed."""
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol")


def texts(user, state="all"):
    return [str(entry) for entry in pigeonhole.inbox(user, state=state)]


# pigeonhole_send ------------------------------------------------------------------
class TestSend:
    def test_sends_to_usernames_and_prints_id_and_count(self, user, other_user, carol):
        out = run("pigeonhole_send", "alice", "bob", "--message", "Maintenance at 22:00")
        [entry] = pigeonhole.inbox(user)
        assert out == f"Sent message {entry.message_id} to 2 users.\n"
        assert texts(user) == texts(other_user) == ["Maintenance at 22:00"]
        assert texts(carol) == []

    def test_one_recipient_is_one_user(self, user):
        out = run("pigeonhole_send", "alice", "-m", "Hi")
        assert out.endswith("to 1 user.\n")

    def test_groups_and_usernames_reach_each_person_once(self, group, user, other_user, carol):
        others = Group.objects.create(name="others")
        others.user_set.add(other_user, carol)
        out = run(
            "pigeonhole_send", "alice", "--group", "staff", "--group", "others", "-m", "All hands"
        )
        assert out.endswith("to 3 users.\n")
        assert [pigeonhole.unread_count(u) for u in (user, other_user, carol)] == [1, 1, 1]

    def test_all_sends_to_active_users_only(self, user, other_user, carol):
        carol.is_active = False
        carol.save()
        out = run("pigeonhole_send", "--all", "-m", "Everyone")
        assert out.endswith("to 2 users.\n")
        assert texts(carol) == []

    def test_unknown_users_and_groups_are_all_named_and_nothing_is_sent(self, user, group):
        with pytest.raises(CommandError) as error:
            run(
                "pigeonhole_send",
                "alice",
                "zed",
                "yan",
                "--group",
                "staff",
                "--group",
                "ghosts",
                "-m",
                "Hi",
            )
        assert str(error.value) == "Nothing sent; unknown users: zed, yan; unknown group: ghosts."
        assert texts(user) == []

    def test_reads_the_text_from_stdin(self, user):
        run("pigeonhole_send", "alice", "--message", "-", stdin=io.StringIO("From a pipe\n"))
        assert texts(user) == ["From a pipe"]

    @pytest.mark.parametrize(
        ("level", "stored"),
        [
            ("warning", pigeonhole.WARNING),
            ("ERROR", pigeonhole.ERROR),
            ("debug", pigeonhole.DEBUG),
            ("21", pigeonhole.PERSISTENT_INFO),
        ],
    )
    def test_level_by_name_or_number(self, user, level, stored):
        run("pigeonhole_send", "alice", "-m", "Levelled", "--level", level)
        assert pigeonhole.inbox(user)[0].level == stored

    def test_level_defaults_to_info(self, user):
        run("pigeonhole_send", "alice", "-m", "Plain")
        assert pigeonhole.inbox(user)[0].level == pigeonhole.INFO

    def test_unknown_level_is_an_error(self, user):
        with pytest.raises(CommandError, match="Unknown level 'loud'"):
            run("pigeonhole_send", "alice", "-m", "Hi", "--level", "loud")
        assert texts(user) == []

    def test_subject_and_url_are_stored(self, user):
        run("pigeonhole_send", "alice", "-m", "Read me", "--subject", "News", "--url", "/news/")
        [entry] = pigeonhole.inbox(user)
        assert (entry.subject, entry.url) == ("News", "/news/")

    def test_invalid_message_is_a_command_error(self, user):
        with pytest.raises(CommandError, match="url must be a path"):
            run("pigeonhole_send", "alice", "-m", "Hi", "--url", "javascript:alert(1)")
        assert texts(user) == []

    def test_empty_stdin_is_a_command_error(self, user):
        with pytest.raises(CommandError, match="message is empty"):
            run("pigeonhole_send", "alice", "-m", "-", stdin=io.StringIO("\n"))

    def test_no_recipients_is_an_error(self, user):
        with pytest.raises(CommandError, match="Name the recipients"):
            run("pigeonhole_send", "-m", "Hi")

    def test_all_with_usernames_is_an_error(self, user):
        with pytest.raises(CommandError, match="--all already includes everyone"):
            run("pigeonhole_send", "alice", "--all", "-m", "Hi")
        assert texts(user) == []

    def test_empty_group_is_an_error_and_sends_nothing(self, user):
        Group.objects.create(name="empty")
        with pytest.raises(CommandError, match="no user is in empty"):
            run("pigeonhole_send", "--group", "empty", "-m", "Hi")
        assert texts(user) == []


# pigeonhole_purge -----------------------------------------------------------------
@pytest.fixture
def inboxes(user, other_user):
    """
    Four messages in the states a purge tells apart.

    - "expired": both entries expired, so the message is orphaned by a purge;
    - "half expired": alice's entry expired, bob's not, so the message stays;
    - "old read": read 40 days ago by alice (bob's copy unread);
    - "fresh": read today by alice.
    """
    now = timezone.now()
    sent = {
        text: pigeonhole.send([user, other_user], text)
        for text in ("expired", "half expired", "old read", "fresh")
    }
    InboxEntry.objects.filter(message=sent["expired"]).update(expires=now - timedelta(hours=1))
    InboxEntry.objects.filter(message=sent["half expired"], user=user).update(
        expires=now - timedelta(hours=1)
    )
    InboxEntry.objects.filter(message=sent["old read"], user=user).update(
        read_at=now - timedelta(days=40)
    )
    InboxEntry.objects.filter(message=sent["fresh"], user=user).update(read_at=now)
    return sent


def remaining():
    """Return the surviving (message text, username) pairs."""
    return sorted(InboxEntry.objects.values_list("message__message", "user__username"))


def test_purge_runs_on_every_backend(user, other_user):
    pigeonhole.send(user, "Soon gone", expires=timedelta(hours=1))
    pigeonhole.send(other_user, "Stays")
    expire_in_the_past(user, pigeonhole.inbox(user))
    out = run("pigeonhole_purge", "--expired")
    assert out == "Deleted 1 expired entry, 1 message with no recipients left.\n"
    assert texts(user) == [] and texts(other_user) == ["Stays"]


@pytest.mark.db_only  # sets up states through the database backend's tables
class TestPurge:
    def test_expired_removes_expired_entries_and_orphaned_messages_and_keeps_the_rest(
        self, inboxes
    ):
        out = run("pigeonhole_purge", "--expired")
        assert out == "Deleted 3 expired entries, 1 message with no recipients left.\n"
        assert remaining() == [
            ("fresh", "alice"),
            ("fresh", "bob"),
            ("half expired", "bob"),
            ("old read", "alice"),
            ("old read", "bob"),
        ]
        assert sorted(Message.objects.values_list("message", flat=True)) == [
            "fresh",
            "half expired",
            "old read",
        ]

    def test_read_older_than_removes_old_read_entries_only(self, inboxes):
        out = run("pigeonhole_purge", "--read-older-than", "30")
        assert out == (
            "Deleted 1 read entry older than 30 days, 0 messages with no recipients left.\n"
        )
        assert ("old read", "alice") not in remaining()
        # Explicit options mean just what they say: expired entries stay.
        assert ("expired", "alice") in remaining() and ("old read", "bob") in remaining()

    def test_both_options_together(self, inboxes):
        out = run("pigeonhole_purge", "--expired", "--read-older-than", "30")
        assert out == (
            "Deleted 3 expired entries, 1 read entry older than 30 days, "
            "1 message with no recipients left.\n"
        )
        assert len(remaining()) == 4

    def test_dry_run_counts_and_leaves_data_untouched(self, inboxes):
        before = remaining()
        out = run("pigeonhole_purge", "--expired", "--read-older-than", "30", "--dry-run")
        assert out == (
            "Would delete 3 expired entries, 1 read entry older than 30 days, "
            "1 message with no recipients left.\n"
        )
        assert remaining() == before
        assert Message.objects.count() == 4

    @override_settings(PIGEONHOLE={"RETENTION_DAYS": 30})
    def test_no_option_uses_expired_and_retention_days_and_says_so(self, inboxes):
        out = run("pigeonhole_purge")
        assert out.splitlines() == [
            "No option given: deleting expired entries and read entries older than 30 days "
            '(PIGEONHOLE["RETENTION_DAYS"]).',
            "Deleted 3 expired entries, 1 read entry older than 30 days, "
            "1 message with no recipients left.",
        ]
        assert len(remaining()) == 4

    def test_no_option_without_retention_purges_expired_only(self, inboxes):
        out = run("pigeonhole_purge")
        assert out.splitlines()[0].startswith("No option given: deleting expired entries (set")
        assert out.splitlines()[1] == (
            "Deleted 3 expired entries, 1 message with no recipients left."
        )
        assert ("old read", "alice") in remaining()

    def test_read_older_than_zero_removes_every_read_entry_and_keeps_unread(self, inboxes):
        run("pigeonhole_purge", "--read-older-than", "0")
        assert ("fresh", "alice") not in remaining() and ("fresh", "bob") in remaining()

    def test_negative_days_is_an_error(self, inboxes):
        with pytest.raises(CommandError, match="0 or more days"):
            run("pigeonhole_purge", "--read-older-than", "-1")
        assert len(remaining()) == 8

    def test_message_sent_to_nobody_is_purged(self, user):
        lonely = pigeonhole.send(user, "Nobody left")
        InboxEntry.objects.filter(message=lonely).delete()
        out = run("pigeonhole_purge", "--expired")
        assert out == "Deleted 0 expired entries, 1 message with no recipients left.\n"
        assert not Message.objects.exists()
