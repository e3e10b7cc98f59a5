"""
Email delivery on Django's tasks framework.

``django.tasks`` on Django 6, the ``django-tasks`` backport on Django 5.2.
A send enqueues one :func:`deliver_message` task once its transaction commits;
the task emails each recipient who wants it. Every entry is claimed
(``emailed_at``) before its email goes out, so a retried or duplicated task
never emails anyone twice; an email that fails is released again and retried
with backoff, and once retries run out the digest picks it up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from importlib.util import find_spec
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import get_connection
from django.utils import timezone

from . import mail, service
from .categories import OTHER, enabled_users, get_category, opted_out
from .conf import pigeonhole_settings
from .message import NewMessage, StoredMessage

if find_spec("django.tasks"):
    from django.tasks import task
else:
    try:
        from django_tasks import task
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImproperlyConfigured(
            "Email delivery needs Django's tasks framework: on Django 5.2, pip install django-tasks"
        ) from exc

__all__ = [
    "DeliveryFailed",
    "deliver",
    "deliver_message",
    "schedule_delivery",
    "send_digests",
    "send_digests_task",
    "wants_email",
]

logger = logging.getLogger("pigeonhole.mail")

#: Entries read, claimed and emailed per round.
BATCH = 200


class DeliveryFailed(Exception):
    """Some emails could not be sent; they were released for a retry."""


def wants_email(message: NewMessage) -> bool:
    """
    Return whether a send may email anyone, before recipients are looked at.

    ``email=False`` never emails; ``email=True`` or a level in ``EMAIL_LEVELS``
    emails everyone who has not opted out; otherwise the category decides,
    by its default or a user's opting in.
    """
    if message.email is False:
        return False
    if message.email or message.level in pigeonhole_settings.EMAIL_LEVELS:
        return True
    if not message.category:
        return False
    category = get_category(message.category)
    if category.email:
        return True
    if not category.optional:
        return False
    from .models import Preference

    return Preference.objects.filter(category=category.slug, channel="email", enabled=True).exists()


def email_recipients(entry: StoredMessage, user_ids: Iterable[Any]) -> set[Any]:
    """Return those of ``user_ids`` that ``entry``'s message should be emailed to."""
    ids = set(user_ids)
    if entry.email is False:
        return set()
    if entry.email or entry.level in pigeonhole_settings.EMAIL_LEVELS:
        return ids - opted_out(ids, entry.category, "email")
    if not entry.category:
        return set()
    return enabled_users(ids, entry.category, "email")


def schedule_delivery(backend: Any, message: NewMessage, message_id: Any) -> None:
    """Enqueue :func:`deliver_message` once the send commits, if anyone may get email."""
    if not wants_email(message):
        return
    backend.on_commit(lambda: enqueue(deliver_message, message_id))


def enqueue(task_obj: Any, *args: Any, run_after: datetime | None = None) -> Any:
    """Enqueue on the ``TASK_BACKEND`` and ``TASK_QUEUE`` the settings name."""
    configured = task_obj.using(
        backend=pigeonhole_settings.TASK_BACKEND,
        queue_name=pigeonhole_settings.TASK_QUEUE,
        run_after=run_after,
    )
    return configured.enqueue(*args)


def _users(ids: Iterable[Any]) -> dict[Any, Any]:
    User = get_user_model()
    return {user.pk: user for user in User._default_manager.filter(pk__in=list(ids))}


def _address(user: Any) -> str:
    field = getattr(user, "EMAIL_FIELD", "email")
    return getattr(user, field, "") or ""


def _mailer() -> Any:
    """
    Return an email backend instance to send a batch through one connection.

    Django 6.1 replaces ``EMAIL_BACKEND`` and ``get_connection()`` with
    ``MAILERS``; the default mailer is the one configured either way.
    """
    try:
        from django.core.mail import mailers
    except ImportError:  # Django < 6.1
        return get_connection()
    return mailers.default


def _send_claimed(
    backend: Any,
    claimed: Sequence[tuple[Any, StoredMessage, Any]],
    when: datetime,
    build: Any,
) -> list[Any]:
    """Send one email per claimed item; release and return the entry ids that failed."""
    failed: list[Any] = []
    if not claimed:
        return failed
    connection = _mailer()
    try:
        connection.open()
    except Exception:
        logger.exception("Could not reach the mail server; %d email(s) wait.", len(claimed))
        failed = [pk for _, _, ids in claimed for pk in ids]
    else:
        try:
            for user, payload, ids in claimed:
                email = build(user, payload)
                try:
                    connection.send_messages([email])
                except Exception:
                    logger.exception("Could not email user %s; it will be retried.", user.pk)
                    failed += ids
        finally:
            connection.close()
    if failed:
        backend.release_email(failed, when)
    return failed


def deliver(message_id: Any, attempt: int = 1) -> int:
    """
    Email message ``message_id`` to each recipient who wants it; return how many.

    Safe to run any number of times: each entry is claimed before its email
    goes out, and a claimed entry is never emailed again. Raise
    ``DeliveryFailed`` after scheduling a retry if some emails failed.
    """
    backend = service.store()
    sent = 0
    failed: list[Any] = []
    after = None
    while entries := backend.unmailed_for_message(message_id, after=after, limit=BATCH):
        after = entries[-1].id
        wanted = email_recipients(entries[0], {entry.user_id for entry in entries})
        users = _users(wanted)
        targets = [e for e in entries if e.user_id in users and _address(users[e.user_id])]
        if not targets:
            continue
        when = timezone.now()
        claimed = set(backend.claim_email([entry.id for entry in targets], when))
        batch = [(users[e.user_id], e, [e.id]) for e in targets if e.id in claimed]
        errors = _send_claimed(backend, batch, when, mail.build_message_email)
        failed += errors
        sent += len(batch) - len(errors)
    if failed:
        _retry(message_id, attempt, len(failed))
    return sent


def _retry(message_id: Any, attempt: int, count: int) -> None:
    retries = pigeonhole_settings.EMAIL_RETRIES
    if attempt > retries:
        logger.error(
            "Gave up emailing message %s to %d recipient(s) after %d attempts; "
            "their unread entries go into the next digest.",
            message_id,
            count,
            attempt,
        )
    else:
        delay = pigeonhole_settings.EMAIL_RETRY_DELAY * 2 ** (attempt - 1)
        backend_alias = pigeonhole_settings.TASK_BACKEND
        task_backend = deliver_message.using(backend=backend_alias).get_backend()
        if task_backend.supports_defer:
            enqueue(
                deliver_message,
                message_id,
                attempt + 1,
                run_after=timezone.now() + timedelta(seconds=delay),
            )
        else:
            logger.warning(
                "The tasks backend %r cannot delay a task, so message %s is not retried; "
                "its unread entries go into the next digest.",
                backend_alias,
                message_id,
            )
    raise DeliveryFailed(f"{count} email(s) of message {message_id} failed (attempt {attempt}).")


@task()
def deliver_message(message_id: int, attempt: int = 1) -> int:
    """The task behind every send that may email: see :func:`deliver`."""
    return deliver(message_id, attempt)


def _digest_entries(user_ids: set[Any], entries: list[StoredMessage]) -> dict[Any, list[Any]]:
    """Return, per user, the entries their digest preferences ask for."""
    wanted: dict[Any, list[Any]] = {}
    by_category: dict[str, list[StoredMessage]] = {}
    for entry in entries:
        by_category.setdefault(entry.category or OTHER, []).append(entry)
    for slug, items in by_category.items():
        users = enabled_users({e.user_id for e in items}, slug, "digest")
        for entry in items:
            if entry.user_id in users and entry.email is not False:
                wanted.setdefault(entry.user_id, []).append(entry)
    return wanted


def send_digests(*, now: datetime | None = None, delay: timedelta | None = None) -> int:
    """
    Email each user one digest of their unread entries not yet emailed; return how many.

    Only entries older than ``delay`` (``DIGEST_DELAY_MINUTES``) are listed,
    so an entry the user reads soon after it arrives is never mailed. Every
    due entry is claimed first, those the user's preferences leave out
    included, so no later run looks at them again and no concurrent run lists
    them twice.
    """
    backend = service.store()
    now = now or timezone.now()
    if delay is None:
        delay = timedelta(minutes=pigeonhole_settings.DIGEST_DELAY_MINUTES)
    due: dict[Any, list[StoredMessage]] = {}
    after = None
    while page := backend.unmailed_due(now - delay, limit=BATCH, after=after):
        after = page[-1]
        for entry in page:
            due.setdefault(entry.user_id, []).append(entry)
    sent = 0
    user_ids = list(due)
    for start in range(0, len(user_ids), BATCH):
        chunk = user_ids[start : start + BATCH]
        users = _users(chunk)
        entries = [entry for pk in chunk for entry in due[pk]]
        wanted = _digest_entries(set(chunk), entries)
        when = timezone.now()
        claimed = set(backend.claim_email([entry.id for entry in entries], when))
        batch = []
        for pk in chunk:
            user = users.get(pk)
            mine = [e for e in wanted.get(pk, []) if e.id in claimed]
            if user is not None and mine and _address(user):
                batch.append((user, mine, [e.id for e in mine]))
        errors = set(_send_claimed(backend, batch, when, mail.build_digest_email))
        sent += sum(1 for _, _, ids in batch if not errors.intersection(ids))
    return sent


@task()
def send_digests_task() -> int:
    """Send digests from a periodic task: see :func:`send_digests`."""
    return send_digests()
