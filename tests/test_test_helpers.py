"""pigeonhole.test: assertions for projects' own tests, as functions and as a mixin."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.test import TestCase

import pigeonhole
from pigeonhole import test as helpers
from pigeonhole.test import (
    PigeonholeTestMixin,
    assert_inbox_count,
    assert_not_sent,
    assert_sent,
)

from .timing import expire_in_the_past

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store")]


@pytest.fixture
def inbox(user):
    """alice has one message in each state: unread, read and archived."""
    pigeonhole.send(user, "Unread one", level=pigeonhole.WARNING, subject="Heads up")
    pigeonhole.send(user, "Read one", level=pigeonhole.PERSISTENT_INFO)
    pigeonhole.send(user, "Archived one")
    entries = {str(entry): entry for entry in pigeonhole.inbox(user)}
    pigeonhole.mark_read(user, entries["Read one"])
    pigeonhole.archive(user, entries["Archived one"])
    return entries


class TestAssertInboxCount:
    @pytest.mark.parametrize(
        ("state", "count"), [("unread", 1), ("read", 1), ("all", 2), ("archived", 1)]
    )
    def test_passes_when_the_count_matches(self, user, inbox, state, count):
        assert_inbox_count(user, count, state=state)

    def test_counts_unread_by_default(self, user, inbox):
        assert_inbox_count(user, 1)
        with pytest.raises(AssertionError):
            assert_inbox_count(user, 2)

    def test_failure_says_the_actual_count_and_lists_the_messages(self, user, inbox):
        with pytest.raises(AssertionError) as error:
            assert_inbox_count(user, 3, state="all")
        message = str(error.value)
        assert message.startswith("alice has 2 all messages, not 3. alice has:\n")
        assert "[unread] warning subject='Heads up': Unread one" in message
        assert "[read] info: Read one" in message
        assert "[archived] info: Archived one" in message

    def test_other_users_messages_do_not_count(self, user, other_user, inbox):
        assert_inbox_count(other_user, 0)
        with pytest.raises(AssertionError, match=r"bob has 0 unread messages, not 1\. bob has no"):
            assert_inbox_count(other_user, 1)

    def test_counts_beyond_one_page(self, user, monkeypatch):
        monkeypatch.setattr(helpers, "_PAGE", 2)
        for n in range(5):
            pigeonhole.send(user, f"Message {n}")
        assert_inbox_count(user, 5, state="all")
        assert_sent(user, "Message 0")  # the oldest, on the last page

    def test_anonymous_user_has_nothing(self):
        assert_inbox_count(AnonymousUser(), 0)


class TestAssertSent:
    @pytest.mark.parametrize("text", ["Unread one", "Read one", "Archived one"])
    def test_finds_a_message_in_any_state(self, user, inbox, text):
        assert str(assert_sent(user, text)) == text

    def test_text_must_match_exactly(self, user, inbox):
        with pytest.raises(AssertionError):
            assert_sent(user, "Unread")

    def test_level_matches_its_variants_as_inbox_does(self, user, inbox):
        assert_sent(user, "Read one", level=pigeonhole.INFO)
        assert_sent(user, "Read one", level=pigeonhole.PERSISTENT_INFO)
        with pytest.raises(AssertionError, match=r"no message 'Read one' \(level error\)"):
            assert_sent(user, "Read one", level=pigeonhole.ERROR)

    def test_subject_must_match_when_given(self, user, inbox):
        assert_sent(user, "Unread one", subject="Heads up")
        with pytest.raises(AssertionError, match="subject 'Other'"):
            assert_sent(user, "Unread one", subject="Other")

    def test_failure_lists_what_the_user_has(self, user, other_user, inbox):
        pigeonhole.send(other_user, "For bob")
        with pytest.raises(AssertionError) as error:
            assert_sent(user, "For bob")
        message = str(error.value)
        assert message.startswith("alice has no message 'For bob'. alice has:\n")
        assert message.count("\n  #") == 3

    def test_failure_list_is_capped(self, user, monkeypatch):
        monkeypatch.setattr(helpers, "SHOWN", 2)
        for n in range(5):
            pigeonhole.send(user, f"Message {n}")
        with pytest.raises(AssertionError, match=r"\.\.\. and 3 more$"):
            assert_sent(user, "Missing")

    def test_expired_messages_do_not_count(self, user):
        pigeonhole.send(user, "Gone soon", expires=timedelta(hours=1))
        expire_in_the_past(user, pigeonhole.inbox(user))
        with pytest.raises(AssertionError, match="alice has no messages"):
            assert_sent(user, "Gone soon")


class TestAssertNotSent:
    def test_passes_when_the_user_has_no_such_message(self, user, other_user, inbox):
        pigeonhole.send(other_user, "For bob")
        assert_not_sent(user, "For bob")

    @pytest.mark.parametrize("text", ["Unread one", "Read one", "Archived one"])
    def test_fails_for_a_message_in_any_state(self, user, inbox, text):
        with pytest.raises(AssertionError, match=f"alice has message '{text}': #"):
            assert_not_sent(user, text)

    def test_level_and_subject_narrow_what_counts(self, user, inbox):
        assert_not_sent(user, "Unread one", level=pigeonhole.ERROR)
        assert_not_sent(user, "Unread one", subject="Other")
        with pytest.raises(AssertionError):
            assert_not_sent(user, "Unread one", level=pigeonhole.WARNING, subject="Heads up")


class MixinTests(PigeonholeTestMixin, TestCase):
    """The mixin in a plain Django TestCase, as a project would use it."""

    @classmethod
    def setUpTestData(cls):
        cls.alice = get_user_model().objects.create_user("alice")
        pigeonhole.send(cls.alice, "Welcome", subject="Hi")

    def test_passing_assertions(self):
        self.assertInboxCount(self.alice, 1)
        self.assertInboxCount(self.alice, 0, state="archived")
        entry = self.assertSent(self.alice, "Welcome", level=pigeonhole.INFO, subject="Hi")
        self.assertEqual(entry.subject, "Hi")
        self.assertNotSent(self.alice, "Goodbye")

    def test_failures_raise_the_failure_exception_with_the_details(self):
        with self.assertRaisesMessage(self.failureException, "alice has 1 unread message, not 2"):
            self.assertInboxCount(self.alice, 2)
        with self.assertRaisesMessage(self.failureException, "alice has no message 'Goodbye'"):
            self.assertSent(self.alice, "Goodbye")
        with self.assertRaisesMessage(self.failureException, "alice has message 'Welcome'"):
            self.assertNotSent(self.alice, "Welcome")

    def test_msg_is_added_to_the_failure_message(self):
        with self.assertRaisesMessage(self.failureException, "after signup"):
            self.assertSent(self.alice, "Goodbye", msg="after signup")
        with self.assertRaisesMessage(self.failureException, "alice has no message"):
            self.assertSent(self.alice, "Goodbye", msg="after signup")
