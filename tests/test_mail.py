"""
Email delivery, digests, categories and preferences, on every backend.

Content is checked in ``mail.outbox``; headers on the wire through a real SMTP
server (aiosmtpd on loopback); the queue through django-tasks-db and its real
worker process. Nothing is mocked.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail as django_mail
from django.core import signing
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import pigeonhole
from pigeonhole import service, tasks
from pigeonhole.checks import check_email
from pigeonhole.conf import get_backend
from pigeonhole.exceptions import InvalidMessage
from pigeonhole.mail import read_unsubscribe_token, unsubscribe_token
from pigeonhole.models import Preference
from tests.smtp_support import SMTPServer

ROOT = Path(__file__).resolve().parent.parent

CATEGORIES = {
    "comments": {"label": "Comments", "email": True},
    "billing": {"label": "Billing", "email": True, "optional": False},
    "news": {"label": "News"},
}


@pytest.fixture(autouse=True)
def email_settings(settings):
    settings.PIGEONHOLE = {
        **settings.PIGEONHOLE,
        "SITE_URL": "https://example.com",
        "CATEGORIES": CATEGORIES,
    }


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (the email task's enqueue) as a real commit would."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


def outbox_to(address):
    return [m for m in django_mail.outbox if m.to == [address]]


# Immediate email ---------------------------------------------------------------


def test_email_true_mails_each_recipient_once_after_commit(store, on_commit, user, other_user):
    with on_commit():
        pigeonhole.send([user, other_user], "Your order shipped", email=True, url="/orders/1/")
    assert sorted(m.to[0] for m in django_mail.outbox) == ["alice@example.com", "bob@example.com"]
    [email] = outbox_to("alice@example.com")
    assert "Your order shipped" in email.body
    assert "https://example.com/orders/1/" in email.body
    [entry] = pigeonhole.inbox(user)
    assert entry.emailed_at is not None


def test_one_task_per_send_not_per_recipient(store, on_commit, user, other_user, group):
    enqueued = []
    signals = pytest.importorskip(
        "django.tasks.signals" if tasks.find_spec("django.tasks") else "django_tasks.signals"
    )

    def count(sender, task_result, **kwargs):
        enqueued.append(task_result.task.name)

    signals.task_enqueued.connect(count)
    try:
        with on_commit():
            pigeonhole.send(group, "to everyone", email=True)
    finally:
        signals.task_enqueued.disconnect(count)
    assert enqueued == ["deliver_message"]
    assert len(django_mail.outbox) == 2


def test_no_level_is_emailed_unless_the_site_says_so(store, on_commit, user):
    with on_commit():
        pigeonhole.send(user, "a warning", level=pigeonhole.WARNING)
        pigeonhole.send(user, "an error", level=pigeonhole.PERSISTENT_ERROR)
    assert django_mail.outbox == []


def test_levels_and_the_email_flag_decide(store, on_commit, user, settings):
    settings.PIGEONHOLE = {
        **settings.PIGEONHOLE,
        "EMAIL_LEVELS": [pigeonhole.WARNING, pigeonhole.ERROR],
    }
    with on_commit():
        pigeonhole.send(user, "plain info")
        pigeonhole.send(user, "a warning", level=pigeonhole.WARNING)
        pigeonhole.send(user, "quiet error", level=pigeonhole.ERROR, email=False)
    assert [m.subject for m in django_mail.outbox] == ["a warning"]


def test_rolled_back_send_emails_nobody(store, on_commit, user):
    with on_commit() as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        pigeonhole.send(user, "never happened", email=True)
        raise RuntimeError("roll back")
    assert callbacks == [] and django_mail.outbox == []


def test_a_delivered_message_is_never_emailed_twice(store, on_commit, user, other_user):
    with on_commit():
        sent = pigeonhole.send([user, other_user], "once", email=True)
    assert tasks.deliver(sent.id) == 0
    assert len(django_mail.outbox) == 2


def test_users_without_an_address_are_skipped(store, on_commit, user, django_user_model):
    nobody = django_user_model.objects.create_user("nomail")
    with on_commit():
        pigeonhole.send([user, nobody], "hi", email=True)
    assert [m.to for m in django_mail.outbox] == [["alice@example.com"]]


def test_add_message_in_a_request_emails_too(store, on_commit, user, rf, settings):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "EMAIL_LEVELS": [pigeonhole.PERSISTENT_ERROR]}
    from django.contrib.messages.middleware import MessageMiddleware
    from django.contrib.sessions.middleware import SessionMiddleware

    request = rf.get("/")
    request.user = user
    SessionMiddleware(lambda r: None).process_request(request)
    MessageMiddleware(lambda r: None).process_request(request)
    with on_commit():
        pigeonhole.add_message(request, pigeonhole.PERSISTENT_ERROR, "Payment failed")
    assert [m.subject for m in django_mail.outbox] == ["Payment failed"]


# The email itself --------------------------------------------------------------


def test_headers_threading_and_unsubscribe(store, on_commit, user, other_user):
    with on_commit():
        pigeonhole.send(user, "first", email=True, target=other_user, subject="About Bob")
        pigeonhole.send(user, "second", email=True, target=other_user)
    first, second = django_mail.outbox
    entries = {e.message: e for e in pigeonhole.inbox(user)}
    assert (
        first.extra_headers["Message-ID"] == f"<pigeonhole.entry.{entries['first'].id}@example.com>"
    )
    assert first.extra_headers["In-Reply-To"] == second.extra_headers["In-Reply-To"]
    assert first.extra_headers["References"] == first.extra_headers["In-Reply-To"]
    assert first.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = first.extra_headers["List-Unsubscribe"].strip("<>")
    assert url.startswith("https://example.com/messages/unsubscribe/")
    assert first.subject == "About Bob"


def test_text_is_escaped_in_html_unless_marked_safe(store, on_commit, user):
    from django.utils.safestring import mark_safe

    with on_commit():
        pigeonhole.send(user, "<script>alert(1)</script>", email=True)
        pigeonhole.send(user, mark_safe("<b>bold</b>"), email=True)
    escaped, safe = (m.alternatives[0][0] for m in django_mail.outbox)
    assert "&lt;script&gt;" in escaped and "<script>" not in escaped
    assert "<b>bold</b>" in safe
    assert "bold" in django_mail.outbox[1].body and "<b>" not in django_mail.outbox[1].body


def test_templates_can_be_overridden(store, on_commit, user, settings, tmp_path):
    override = tmp_path / "pigeonhole" / "email"
    override.mkdir(parents=True)
    (override / "message_subject.txt").write_text("[Site] {{ subject }}")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    with on_commit():
        pigeonhole.send(user, "hello", email=True)
    assert django_mail.outbox[0].subject == "[Site] hello"


# Categories and preferences ----------------------------------------------------


def test_category_default_and_opt_out(store, on_commit, user, other_user):
    Preference.objects.create(user=other_user, category="comments", channel="email", enabled=False)
    with on_commit():
        pigeonhole.send([user, other_user], "New comment", category="comments")
        pigeonhole.send([user, other_user], "News of the week", category="news")
    assert [(m.to, m.subject) for m in django_mail.outbox] == [
        (["alice@example.com"], "New comment")
    ]


def test_opting_in_to_a_quiet_category(store, on_commit, user, other_user):
    Preference.objects.create(user=user, category="news", channel="email", enabled=True)
    with on_commit():
        pigeonhole.send([user, other_user], "News", category="news")
    assert [m.to for m in django_mail.outbox] == [["alice@example.com"]]


def test_opt_out_beats_email_true_but_not_a_fixed_category(store, on_commit, user):
    for category in ("comments", "billing"):
        Preference.objects.create(user=user, category=category, channel="email", enabled=False)
    with on_commit():
        pigeonhole.send(user, "comment", email=True, category="comments")
        pigeonhole.send(user, "invoice", category="billing")
    [email] = django_mail.outbox
    assert email.subject == "invoice"
    assert "List-Unsubscribe" not in email.extra_headers


def test_inbox_preference_keeps_messages_out(store, on_commit, user, other_user, group):
    Preference.objects.create(user=user, category="news", channel="inbox", enabled=False)
    with on_commit():
        sent = pigeonhole.send(group, "News", category="news")
        pigeonhole.send([user, other_user], "More news", category="news")
    assert sent.recipient_count == 1
    assert pigeonhole.inbox(user) == []
    assert [e.message for e in pigeonhole.inbox(other_user)] == ["More news", "News"]
    assert service.store_for_user(user, pigeonhole.PERSISTENT_INFO, "x", category="news") is None


def test_unknown_category_is_refused(store, user):
    with pytest.raises(InvalidMessage, match="not declared"):
        pigeonhole.send(user, "typo", category="coments")


def test_category_round_trips_through_the_store(store, user):
    pigeonhole.send(user, "c", category="comments")
    assert pigeonhole.inbox(user)[0].category == "comments"


# Unsubscribe and preferences pages ---------------------------------------------


def _unsubscribe_url(user, category="comments", channel="email"):
    return reverse("pigeonhole:unsubscribe", args=[unsubscribe_token(user.pk, category, channel)])


@pytest.mark.django_db
def test_one_click_unsubscribe_needs_no_login_and_no_csrf(user, other_user):
    client = Client(enforce_csrf_checks=True)
    url = _unsubscribe_url(user)
    page = client.get(url)
    assert page.status_code == 200 and b'<form method="post">' in page.content
    assert not Preference.objects.exists()  # a GET (a link scanner) changes nothing
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert list(Preference.objects.values_list("user", "category", "channel", "enabled")) == [
        (user.pk, "comments", "email", False)
    ]


@pytest.mark.django_db
def test_unsubscribe_refuses_forged_and_expired_tokens(user, other_user, settings):
    client = Client()
    token = unsubscribe_token(user.pk, "comments", "email")
    payload, signature = token.split(":", 1)
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert data["u"] == str(user.pk)
    data["u"] = str(other_user.pk)
    forged = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode())
    forged_token = forged.decode().rstrip("=") + ":" + signature
    other_salt = signing.dumps(data)  # signed, but not as an unsubscribe token
    for bad in (forged_token, other_salt):
        assert client.post(reverse("pigeonhole:unsubscribe", args=[bad])).status_code == 400
    assert client.post(reverse("pigeonhole:unsubscribe", args=["nonsense"])).status_code == 400
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "UNSUBSCRIBE_DAYS": -1}
    with pytest.raises(signing.SignatureExpired):
        read_unsubscribe_token(token)
    assert client.post(reverse("pigeonhole:unsubscribe", args=[token])).status_code == 400
    assert not Preference.objects.exists()


@pytest.mark.django_db
def test_unsubscribe_from_a_fixed_category_changes_nothing(user):
    response = Client().post(_unsubscribe_url(user, "billing"))
    assert response.status_code == 200 and b"cannot be turned off" in response.content
    assert not Preference.objects.exists()


@pytest.mark.django_db
def test_preferences_page_saves_only_the_users_own_changeable_choices(user, other_user):
    client = Client(enforce_csrf_checks=True)
    url = reverse("pigeonhole:preferences")
    assert client.get(url).status_code == 302  # login first
    client.force_login(user)
    page = client.get(url)
    assert page.status_code == 200 and b"Comments" in page.content
    token = page.cookies["csrftoken"].value
    assert client.post(url, {}).status_code == 403  # CSRF protected
    data = {"csrfmiddlewaretoken": token, "comments__inbox": "on", "billing__email": ""}
    response = client.post(url, data)
    assert response.status_code == 302
    prefs = pigeonhole.categories.get_preferences(user)
    assert prefs[("comments", "inbox")] is True
    assert prefs[("comments", "email")] is False
    assert prefs[("billing", "email")] is True  # fixed: the form cannot switch it
    assert not Preference.objects.filter(user=other_user).exists()


# Digests -----------------------------------------------------------------------


def _age(store, user, hours=2):
    """Make every entry of ``user`` look ``hours`` old, as if sent back then."""
    backend = get_backend()
    when = timezone.now() - timedelta(hours=hours)
    if store == "db":
        from pigeonhole.models import InboxEntry

        InboxEntry.objects.filter(user=user).update(created=when)
        return
    from pigeonhole.backends.redis.encoding import ts
    from pigeonhole.backends.redis.keys import group_of

    client, group = backend.get_client(), group_of(user.pk)
    unmailed = backend.keys.index(group, "unmailed")
    for entry in pigeonhole.inbox(user, state="all"):
        # The whole hash, as the store writes it: an entry a send wrote has none
        # yet, and waits for its digest in its part until it gets one.
        key = backend.keys.entry(group, entry.id)
        in_part = not client.exists(key) and entry.read_at is None
        fields = {"u": str(user.pk), "m": str(entry.message_id), "c": ts(when)}
        client.hset(key, mapping=fields)
        client.zadd(unmailed, {str(entry.id): ts(when)}, xx=not in_part)


def test_digest_lists_each_users_unread_entries_once_grouped(store, user, other_user):
    pigeonhole.send([user, other_user], "A comment", category="news")
    pigeonhole.send(user, "Plain")
    pigeonhole.send(user, "Already read")
    pigeonhole.mark_read(user, [pigeonhole.inbox(user)[0]])
    pigeonhole.send(user, "Too fresh")
    _age(store, user)
    pigeonhole.send(user, "Too fresh")
    _age(store, other_user)
    call_command("pigeonhole_digest", stdout=open(os.devnull, "w"))  # noqa: SIM115
    alice, bob = outbox_to("alice@example.com"), outbox_to("bob@example.com")
    assert len(alice) == len(bob) == 1
    body = alice[0].body
    assert "News" in body and "A comment" in body and "Plain" in body
    assert "Already read" not in body
    assert body.index("News") < body.index("Other notifications")
    # The first "Too fresh" was aged with the rest; the second is newer than the delay.
    assert body.count("Too fresh") == 1
    assert alice[0].subject == "You have 3 unread messages"
    assert alice[0].extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert tasks.send_digests() == 0  # nothing twice
    assert len(django_mail.outbox) == 2


def test_digest_respects_the_digest_preference(store, user, other_user):
    Preference.objects.create(user=user, category="news", channel="digest", enabled=False)
    pigeonhole.send([user, other_user], "News", category="news")
    _age(store, user)
    _age(store, other_user)
    assert tasks.send_digests() == 1
    assert [m.to for m in django_mail.outbox] == [["bob@example.com"]]


@pytest.mark.django_db
def test_digest_one_click_unsubscribe_turns_off_every_digest(user):
    url = reverse("pigeonhole:unsubscribe", args=[unsubscribe_token(user.pk, "*", "digest")])
    assert Client().post(url).status_code == 200
    prefs = pigeonhole.categories.get_preferences(user)
    assert not any(
        on for (cat, channel), on in prefs.items() if channel == "digest" and cat != "billing"
    )


def test_a_digest_read_in_many_pages_lists_each_entry_once(store, django_user_model, monkeypatch):
    users = [
        django_user_model.objects.create_user(f"u{i}", email=f"u{i}@example.com") for i in range(5)
    ]
    for i in range(4):
        pigeonhole.send(users, f"message {i}")
    for user in users:
        _age(store, user)
    backend = get_backend()
    for user in users[:3]:
        # Expired entries early in the queue, which the store skips inside a page.
        backend.expire(user.pk, [pigeonhole.inbox(user)[-1].id])
    monkeypatch.setattr(tasks, "BATCH", 3)
    assert tasks.send_digests() == 5
    listed = {}
    for email in django_mail.outbox:
        for i in range(4):
            listed[(email.to[0], i)] = listed.get((email.to[0], i), 0) + email.body.count(
                f"message {i}"
            )
    expired = {(f"u{n}@example.com", 0) for n in range(3)}
    assert {key for key, times in listed.items() if times == 0} == expired
    assert {times for key, times in listed.items() if key not in expired} == {1}


@pytest.mark.django_db(transaction=True)
def test_concurrent_digest_runs_never_list_an_entry_twice(store, django_user_model, settings):
    if store == "db" and connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL, MariaDB or Redis")
    users = [
        django_user_model.objects.create_user(f"u{i}", email=f"u{i}@example.com") for i in range(5)
    ]
    for i in range(4):
        pigeonhole.send(users, f"message {i}")
    for user in users:
        _age(store, user)
    barrier = threading.Barrier(3)
    errors = []

    def run():
        from django.db import connection as thread_connection

        try:
            barrier.wait()
            tasks.send_digests()
        except Exception as exc:  # reported below; a thread cannot fail the test
            errors.append(exc)
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    listed = {}
    for email in django_mail.outbox:
        for i in range(4):
            if f"message {i}" in email.body:
                listed.setdefault((email.to[0], i), 0)
                listed[(email.to[0], i)] += 1
    assert len(listed) == 20 and set(listed.values()) == {1}


# SMTP on the wire, failures and retries ----------------------------------------


def use_smtp(settings, port, timeout=10):
    """Point Django's email at ``port`` on loopback: MAILERS on Django 6.1+."""
    import django.core.mail

    if hasattr(django.core.mail, "mailers"):
        options = {"host": "127.0.0.1", "port": port, "timeout": timeout}
        backend = "django.core.mail.backends.smtp.EmailBackend"
        settings.MAILERS = {"default": {"BACKEND": backend, "OPTIONS": options}}
    else:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_TIMEOUT = timeout


@pytest.fixture
def smtp(settings):
    with SMTPServer() as server:
        use_smtp(settings, server.port)
        yield server


def test_headers_arrive_on_the_wire(store, on_commit, smtp, user, other_user):
    with on_commit():
        pigeonhole.send(user, "Over SMTP", email=True, category="comments", target=other_user)
    [(recipients, message)] = smtp.received
    assert recipients == ["alice@example.com"]
    assert message["Subject"] == "Over SMTP"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = message["List-Unsubscribe"].strip()  # long headers arrive folded
    assert unsubscribe.startswith("<https://example.com/messages/unsubscribe/")
    assert message["Message-ID"].startswith("<pigeonhole.entry.")
    assert message["In-Reply-To"] == message["References"]
    assert message["Auto-Submitted"] == "auto-generated"
    assert {part.get_content_type() for part in message.walk()} >= {"text/plain", "text/html"}
    token = unsubscribe.strip("<>").rstrip("/").rsplit("/", 1)[1]
    assert Client().post(reverse("pigeonhole:unsubscribe", args=[token])).status_code == 200
    assert not pigeonhole.categories.get_preferences(user)[("comments", "email")]


def test_a_refused_recipient_is_retried_and_the_others_are_not_mailed_again(
    store, on_commit, smtp, user, other_user
):
    smtp.refuse_once("bob@example.com")
    with on_commit():
        sent = pigeonhole.send([user, other_user], "Retry me", email=True)
    assert [r for r, _ in smtp.received] == [["alice@example.com"]]
    assert pigeonhole.inbox(other_user)[0].emailed_at is None  # released, not lost
    assert tasks.deliver(sent.id, attempt=2) == 1
    assert [r for r, _ in smtp.received] == [["alice@example.com"], ["bob@example.com"]]
    assert tasks.deliver(sent.id, attempt=3) == 0


def test_failure_is_raised_so_the_task_result_records_it(store, smtp, user):
    smtp.refuse_once("alice@example.com")
    sent = pigeonhole.send(user, "Fails once", email=True)
    with pytest.raises(tasks.DeliveryFailed, match="attempt 1"):
        tasks.deliver(sent.id)
    assert tasks.deliver(sent.id, attempt=2) == 1


def test_unreachable_smtp_leaves_everything_for_later(store, settings, user):
    from tests.backends.redis_support import free_port

    use_smtp(settings, free_port(), timeout=2)
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "EMAIL_RETRIES": 0}
    sent = pigeonhole.send(user, "Nobody home", email=True)
    with pytest.raises(tasks.DeliveryFailed):
        tasks.deliver(sent.id)
    assert pigeonhole.inbox(user)[0].emailed_at is None


# The queue and its worker ------------------------------------------------------


@pytest.mark.django_db
def test_the_database_queue_holds_the_task_until_the_worker_runs(user, settings, on_commit):
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    with on_commit():
        pigeonhole.send(user, "queued", email=True)
    assert django_mail.outbox == []
    [result] = DBTaskResult.objects.all()
    assert result.task_path == "pigeonhole.tasks.deliver_message"


SCENARIO = """
import pigeonhole
from django.contrib.auth import get_user_model
from django.db import transaction
User = get_user_model()
alice = User.objects.create_user("alice", email="alice@example.com")
bob = User.objects.create_user("bob", email="bob@example.com")
with transaction.atomic():
    pigeonhole.send([alice, bob], "From the worker", email=True, subject="Queued")
"""


def test_the_db_worker_process_delivers_and_retries(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "PIGEONHOLE_WORKER_DB": str(tmp_path / "worker.sqlite3"),
        "PYTHONPATH": str(ROOT),
    }

    def manage(*args):
        result = subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result

    with SMTPServer() as smtp:
        env["PIGEONHOLE_WORKER_SMTP_PORT"] = str(smtp.port)
        smtp.refuse_once("bob@example.com")
        manage("migrate", "--noinput", "-v", "0")
        manage("shell", "-c", SCENARIO)
        assert smtp.received == []  # queued, not sent by the sending process
        manage("db_worker", "--batch", "--no-startup-delay", "--no-reload", "-v", "0")
    received = sorted(recipients[0] for recipients, _ in smtp.received)
    assert received == ["alice@example.com", "bob@example.com"]
    assert all(message["Subject"] == "Queued" for _, message in smtp.received)


# Checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ident"),
    [
        ({"CATEGORIES": []}, "pigeonhole.E030"),
        ({"CATEGORIES": {"Not A Slug": {}}}, "pigeonhole.E031"),
        ({"CATEGORIES": {"c": "label"}}, "pigeonhole.E032"),
        ({"CATEGORIES": {"c": {"email": "yes"}}}, "pigeonhole.E032"),
        ({"CATEGORIES": {"c": {"lable": "typo"}}}, "pigeonhole.E032"),
        ({"DIGEST_DELAY_MINUTES": -1}, "pigeonhole.E033"),
        ({"SITE_URL": "example.com"}, "pigeonhole.E034"),
        ({"SITE_URL": None}, "pigeonhole.W010"),
    ],
)
def test_bad_email_settings_fail_checks(settings, value, ident):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, **value}
    assert [error.id for error in check_email()] == [ident]


def test_good_email_settings_pass_checks():
    assert check_email() == []


# Muting a conversation from an email -------------------------------------------


def _mute_link(email):
    """The mute link of an email, from its text part."""
    [line] = [line for line in email.body.splitlines() if "Mute this conversation" in line]
    return line.rsplit(" ", 1)[-1]


@pytest.mark.db_only  # the Redis store keeps no threads yet
def test_a_threaded_email_has_a_signed_mute_link_beside_the_unsubscribe(
    store, on_commit, user, other_user
):
    with on_commit():
        pigeonhole.send(user, "first", email=True, thread="order-7", category="comments")
        pigeonhole.send(user, "unthreaded", email=True, category="comments")
    threaded, plain = django_mail.outbox
    url = _mute_link(threaded)
    assert url.startswith("https://example.com/messages/unsubscribe/")
    assert "Stop emails about" in threaded.body  # the category's link stays
    html = threaded.alternatives[0][0]
    assert "Mute this conversation" in html and url.replace("&", "&amp;") in html
    assert "Mute this conversation" not in plain.body
    token = url.rstrip("/").rsplit("/", 1)[-1]
    assert read_unsubscribe_token(token) == (str(user.pk), "order-7", "thread")

    client = Client(enforce_csrf_checks=True)
    page = client.get(url)
    assert page.status_code == 200 and b'<form method="post">' in page.content
    assert b"Mute this conversation" in page.content
    assert pigeonhole.muted_threads(user) == []  # a GET (a link scanner) changes nothing
    done = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and b"muted" in done.content
    assert pigeonhole.muted_threads(user) == ["order-7"]
    assert pigeonhole.muted_threads(other_user) == []
    with on_commit():
        pigeonhole.send(user, "second", email=True, thread="order-7", category="comments")
    assert len(django_mail.outbox) == 2  # muted: neither entry nor email
    again = client.post(url)
    assert again.status_code == 200 and b"already muted" in again.content


@pytest.mark.django_db
def test_a_forged_mute_link_mutes_nothing(user, other_user):
    token = unsubscribe_token(user.pk, "order-7", "thread")
    payload, signature = token.split(":", 1)
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["u"] = str(other_user.pk)
    forged = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode())
    bad = forged.decode().rstrip("=") + ":" + signature
    assert Client().post(reverse("pigeonhole:unsubscribe", args=[bad])).status_code == 400
    assert pigeonhole.muted_threads(other_user) == []
