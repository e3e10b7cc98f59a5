"""
Database tables behind ``DatabaseBackend``.

The content (``Message``) is written once however many people receive it; each
recipient gets a thin ``InboxEntry`` row carrying their own read, archived and
emailed state. Sending to 100,000 users is then one wide row and 100,000 narrow
ones, inserted by the database itself from a ``SELECT`` of the recipients.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .constants import level_variants
from .message import level_tag_for

__all__ = ["FoldedEntry", "InboxEntry", "Message", "Mute", "Preference", "Thread"]


def _user_key(related_name: str, **options: Any) -> models.ForeignKey[Any, Any]:
    """
    Return the ``user`` key of a per-user table: its rows go with their user.

    Each such table has an index or a unique constraint holding ``user``, which
    serves the key's lookups, so the key gets no index of its own.
    """
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name=related_name,
        db_index=False,
        **options,
    )


class Message(models.Model):
    level = models.IntegerField(_("level"), db_index=False)
    message = models.TextField(_("message"))
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    extra_tags = models.CharField(_("extra tags"), max_length=255, blank=True)
    url = models.CharField(_("URL"), max_length=2000, blank=True)
    data = models.JSONField(_("data"), null=True, blank=True)
    safe = models.BooleanField(
        _("safe HTML"),
        default=False,
        help_text=_("The sender marked the text as safe HTML; otherwise it is escaped."),
    )
    from_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("from"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    target_content_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    target_object_id = models.CharField(max_length=255, blank=True)
    target = GenericForeignKey("target_content_type", "target_object_id")
    in_reply_to = models.ForeignKey(
        "self",
        verbose_name=_("in reply to"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replies",
    )
    close_timeout = models.PositiveIntegerField(_("close after (seconds)"), null=True, blank=True)
    email = models.BooleanField(_("email"), null=True, blank=True)
    category = models.SlugField(
        _("category"),
        max_length=50,
        null=True,
        blank=True,
        db_index=False,
        help_text=_("One of PIGEONHOLE['CATEGORIES']; users choose per category how to be told."),
    )
    thread = models.CharField(
        _("thread"),
        max_length=200,
        blank=True,
        help_text=_("Messages with the same key share one inbox row per recipient."),
    )
    reason = models.CharField(
        _("reason"),
        max_length=32,
        blank=True,
        help_text=_("Why the recipients are told, such as 'mention'; the inbox filters on it."),
    )
    created = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    expires = models.DateTimeField(_("expires"), null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["-created", "-id"]
        indexes = [
            # A thread's messages: through them a send finds the thread's rows
            # (see InboxEntry). One entry per send, however many recipients.
            models.Index(fields=["thread"], name="pigeonhole_message_thread_idx"),
        ]

    def __str__(self) -> str:
        return self.subject or self.message[:80]

    @property
    def level_tag(self) -> str:
        return level_tag_for(self.level)


class InboxEntryQuerySet(models.QuerySet["InboxEntry"]):
    def visible(self, now: datetime | None = None) -> InboxEntryQuerySet:
        """Exclude expired entries, invisible everywhere until purged."""
        now = now or timezone.now()
        return self.filter(Q(expires__isnull=True) | Q(expires__gt=now))

    def unread(self) -> InboxEntryQuerySet:
        return self.filter(read_at__isnull=True, archived_at__isnull=True)

    def for_level(self, level: int) -> InboxEntryQuerySet:
        return self.filter(message__level__in=level_variants(level))

    def history(self) -> models.QuerySet[FoldedEntry]:
        """
        Return the thread history these rows keep: what must go when they go.

        The store's own deletes take it along; this is for deletes that go
        around the store (the admin, a message deleted through Django).
        """
        heads = self.filter(user_id=OuterRef("user_id"), thread=OuterRef("thread"))
        return (
            FoldedEntry.objects.using(self.db)
            .filter(user_id__in=self.filter(thread__isnull=False).values("user_id"))
            .filter(Exists(heads))
        )


class EntryState(models.Model):
    """
    What one recipient's copy of a message holds: an inbox row, or a thread's folded history.

    ``expires`` repeats the message's expiry so an unread count reads the
    entry table alone: counting must not join the wide content table.
    """

    created = models.DateTimeField(_("created"), default=timezone.now)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    archived_at = models.DateTimeField(_("archived"), null=True, blank=True)
    emailed_at = models.DateTimeField(_("emailed"), null=True, blank=True)
    expires = models.DateTimeField(_("expires"), null=True, blank=True)
    seen_at = models.DateTimeField(_("seen"), null=True, blank=True)
    saved_at = models.DateTimeField(_("saved"), null=True, blank=True)
    # The message's thread key, repeated so threading and muting read this table alone.
    thread = models.CharField(_("thread"), max_length=200, null=True, blank=True)
    # Defaults in the database too: the fan-out's INSERT ... SELECT leaves them out.
    count = models.PositiveIntegerField(_("messages since last read"), db_default=1)
    # ",id,id,id," newest first: distinct senders, kept short by the insert itself.
    senders = models.CharField(_("senders"), max_length=160, blank=True, db_default="")

    class Meta:
        abstract = True

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class InboxEntry(EntryState):
    """
    One recipient's copy of a message: a row of their inbox.

    In a thread, the newest message's entry is the row: it carries ``count``
    and ``senders`` over from the row it replaces, which moves, as it was, to
    ``FoldedEntry``. A new message gets a new entry, so a row moves to the top
    by the same id order that keyset paging and ``mark_all_read(before=...)``
    rely on. The replaced row leaves this table rather than staying in it
    marked: a deletion writes no index, where a marked row was written again
    to every index of this table (see docs/performance.md).
    """

    user = _user_key(
        "pigeonhole_entries",  # its lookups use the (user, -id) index below
        # No constraint in the database: checking it for every recipient of a
        # send doubled the send's time. Django still deletes a user's entries
        # with the user (on_delete runs in Python, not in the database).
        # docs/backends.md weighs this.
        db_constraint=False,
    )
    message = models.ForeignKey(
        Message,
        verbose_name=_("message"),
        on_delete=models.CASCADE,
        related_name="entries",
        # Entries of a message are only ever written by the transaction that
        # creates it, so there is nothing for the database to check.
        db_constraint=False,
        db_index=False,  # the (message, user) index below serves its lookups
    )

    objects = InboxEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("inbox entry")
        verbose_name_plural = _("inbox entries")
        ordering = ["-id"]
        indexes = [
            # Every inbox listing: WHERE user_id = ? ORDER BY id DESC, keyset on id.
            models.Index(fields=["user", "-id"], name="pigeonhole_entry_user_idx"),
            # Unread counts and the first unread page touch only unread rows where
            # the database has partial indexes (SQLite, PostgreSQL). It finds the
            # unseen ones too (unseen count, mark_seen()): they are unread by
            # definition, so an index of their own would cost every send a write
            # to save a reader only the unread entries already seen.
            # MariaDB, which has no partial indexes, gets a full one.
            models.Index(
                fields=["user", "-id"],
                name="pigeonhole_entry_unread_idx",
                condition=Q(read_at__isnull=True, archived_at__isnull=True),
            ),
            # The Saved tab: few rows per user, listed newest first.
            models.Index(
                fields=["user", "-id"],
                name="pigeonhole_entry_saved_idx",
                condition=Q(saved_at__isnull=False),
            ),
            # Digests look for unread entries not yet emailed, oldest first; once
            # emailed or read an entry leaves this index, so it stays small.
            # The id makes it the order of their cursor: with ``created`` alone, a
            # page after the cursor re-sorts every entry of the cursor's send.
            models.Index(
                fields=["created", "id"],
                name="pigeonhole_entry_unmailed_idx",
                condition=Q(
                    read_at__isnull=True, archived_at__isnull=True, emailed_at__isnull=True
                ),
            ),
            # A message's entries (email, live delivery, deletes), and a thread's
            # rows: those of its messages (Message.thread is indexed), one user's
            # found with a probe per message of the thread. No (thread, user)
            # index: every row of every send wrote to it, where this one is
            # written in order, a send's rows sharing one message and growing
            # user ids. One row per user and thread is kept by the send itself
            # (see docs/backends.md).
            models.Index(fields=["message", "user"], name="pigeonhole_entry_message_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.message} → {self.user}"


class FoldedEntry(EntryState):
    """
    A thread's older message for one user: the inbox row it was, kept as it was.

    Hidden from every listing and count, it is what ``thread_messages()``,
    an export and a live client's "replaced row" read. It keeps the id it had
    as a row (entry ids come from one sequence, so they stay unique), and it
    goes with the thread's row when that row is deleted or purged.

    Two indexes: its primary key, (user, thread, id), a user's history of one
    thread, oldest first, which reads and the thread's deletes go through;
    and the message's, which a message's deletion and purge's search for
    messages nothing holds go through (written in order: a send folds rows
    of one older message at a time). Each threaded send writes a row here per
    recipient; a third index, (user, thread, id) beside a primary key of its
    own, made that write about 1.7 times as long.
    """

    pk = models.CompositePrimaryKey("user", "thread", "id")
    id = models.BigIntegerField(_("entry id"))
    user = _user_key(
        "pigeonhole_folded_entries",  # its lookups use the primary key
        db_constraint=False,  # as InboxEntry.user: written by every threaded send
    )
    message = models.ForeignKey(
        Message,
        verbose_name=_("message"),
        on_delete=models.CASCADE,
        related_name="folded_entries",
        db_constraint=False,
    )
    # Never empty here: part of the primary key.
    thread = models.CharField(_("thread"), max_length=200)

    class Meta:
        verbose_name = _("folded inbox entry")
        verbose_name_plural = _("folded inbox entries")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.message} → {self.user} (folded)"


class Thread(models.Model):
    """
    One row per thread key: the lock that keeps one inbox row per user and thread.

    No unique index holds a thread's rows (see ``InboxEntry``), so every write
    of them (a threaded send, ``add()`` into a thread, an import) first
    upserts this row, and writers of one thread take turns on its row lock.
    A row lock, unlike an advisory one, is a write the database checks
    against the transaction's snapshot: at ``REPEATABLE READ`` or
    ``SERIALIZABLE``, PostgreSQL fails a send whose snapshot predates
    another's commit into the thread, where it would have missed the other's
    rows and kept a second row per user. Purge deletes the row once the
    thread has no message left; the next send writes it again.
    """

    thread = models.CharField(_("thread"), max_length=200, primary_key=True)
    #: The newest message written into the thread: what the upsert sets.
    last_message = models.BigIntegerField(_("last message id"))

    class Meta:
        verbose_name = _("thread")
        verbose_name_plural = _("threads")

    def __str__(self) -> str:
        return self.thread


class Mute(models.Model):
    """A thread one user asked not to hear about: a send gives them no entry in it."""

    user = _user_key("pigeonhole_mutes")  # its lookups use the unique constraint below
    thread = models.CharField(_("thread"), max_length=200)
    created = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("muted thread")
        verbose_name_plural = _("muted threads")
        constraints = [
            models.UniqueConstraint(fields=["thread", "user"], name="pigeonhole_mute_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.thread}"


class Preference(models.Model):
    """
    One user's choice for one category and channel, where it differs from the default.

    A missing row means the category's default; ``category = ""`` stands for
    messages sent without a category.
    """

    class Channel(models.TextChoices):
        INBOX = "inbox", _("Inbox")
        EMAIL = "email", _("Email")
        DIGEST = "digest", _("Digest")

    user = _user_key("pigeonhole_preferences")  # its lookups use the unique constraint below
    category = models.CharField(_("category"), max_length=50, blank=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    enabled = models.BooleanField(_("enabled"))
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "category", "channel"], name="pigeonhole_preference_unique"
            )
        ]

    def __str__(self) -> str:
        state = _("on") if self.enabled else _("off")
        return f"{self.user} · {self.category or '-'} · {self.channel}: {state}"
