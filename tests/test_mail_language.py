"""
Emails speak the recipient's language, not the sender's.

The French strings come from the catalogue pigeonhole ships;
``USER_LANGUAGE`` reads each user's language from their ``first_name`` for
the test's sake.
"""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.checks import run_checks
from django.utils import timezone, translation

import pigeonhole
from pigeonhole import tasks
from pigeonhole.mail import user_language

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store")]


def language_of(user):
    return user.first_name


@pytest.fixture(autouse=True)
def email_settings(settings):
    settings.PIGEONHOLE = {
        **settings.PIGEONHOLE,
        "SITE_URL": "https://example.com",
        "USER_LANGUAGE": "tests.test_mail_language.language_of",
    }


@pytest.fixture
def french(django_user_model):
    return django_user_model.objects.create_user("amelie", "amelie@example.com", first_name="fr")


def sent_to(address):
    (email,) = [m for m in mail.outbox if m.to == [address]]
    return email


def test_each_recipient_reads_their_own_language(user, french, django_capture_on_commit_callbacks):
    with translation.override("de"), django_capture_on_commit_callbacks(execute=True):
        pigeonhole.send([user, french], "Build 7 passed.", url="/builds/7/", email=True)
    theirs = sent_to(french.email)
    assert theirs.extra_headers["Content-Language"] == "fr"
    assert "Choisissez ce qui vous est signalé, et comment :" in theirs.body
    assert "Le voir sur le site" in theirs.alternatives[0][0]
    ours = sent_to(user.email)  # no language of their own: the site's, not the sender's
    assert ours.extra_headers["Content-Language"] == "en-us"
    assert "Choose what you are told and how:" in ours.body
    assert translation.get_language() == "en-us"  # nothing leaks out of the override


def test_digest_subject_is_translated(french):
    pigeonhole.send(french, "One.")
    pigeonhole.send(french, "Two.")
    assert tasks.send_digests(now=timezone.now() + timedelta(seconds=1), delay=timedelta(0)) == 1
    assert sent_to(french.email).subject == "Vous avez 2 messages non lus"


@pytest.mark.parametrize(
    ("code", "expected"),
    [("fr", "fr"), ("fr-ca", "fr"), ("xx", "en-us"), ("", "en-us"), (None, "en-us")],
)
def test_unknown_languages_fall_back_to_the_sites(user, code, expected, settings):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "USER_LANGUAGE": lambda user: code}
    assert user_language(user) == expected


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("tests.test_mail_language.nothing_here", "does not import"),
        ("tests.test_mail_language.pytestmark", "names list"),
        (42, "not a callable"),
    ],
)
def test_bad_user_language_fails_checks(settings, value, says):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "USER_LANGUAGE": value}
    errors = [e for e in run_checks() if e.id == "pigeonhole.E035"]
    assert len(errors) == 1 and says in errors[0].msg
