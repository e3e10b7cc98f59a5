"""
The contract every message store implements.

``api`` validates input and resolves recipients, then calls one of these
methods; a backend only stores and fetches. Every method takes a user *id*,
never a user object, so a backend never loads users and can live outside the
database (Redis).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from .. import versions
from ..conf import pigeonhole_settings
from ..message import NewMessage, StoredMessage

__all__ = ["BaseBackend", "InboxState", "Recipients", "SentMessage"]

STATES = ("unread", "read", "all", "archived")


@dataclass(frozen=True)
class Recipients:
    """
    Who receives a message: a query the database can run itself, or plain ids.

    ``queryset`` is a QuerySet of users (it may repeat a user, through groups),
    so a database backend can copy recipients with one ``INSERT ... SELECT``
    instead of pulling every id into Python. ``ids`` holds distinct user ids
    otherwise.
    """

    queryset: Any = None
    ids: Sequence[Any] = ()

    def iter_ids(self, chunk_size: int = 2000) -> Iterable[list[Any]]:
        """Yield recipient ids in chunks, for backends that cannot join the users table."""
        if self.queryset is None:
            for start in range(0, len(self.ids), chunk_size):
                yield list(self.ids[start : start + chunk_size])
            return
        chunk: list[Any] = []
        for pk in self.queryset.values_list("pk", flat=True).iterator(chunk_size=chunk_size):
            chunk.append(pk)
            if len(chunk) >= chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


@dataclass
class SentMessage:
    """
    What ``send()`` returns: the shared content's id and how many received it.

    The database backend returns its ``Message`` model instance instead, which
    carries the same two attributes.
    """

    id: Any
    recipient_count: int


@dataclass(frozen=True)
class InboxState:
    """
    A user's inbox in brief, read without loading any message.

    ``unread`` and ``max_level`` (the highest level among unread entries, or
    None) are what a badge shows. ``version`` is an opaque string that changes
    whenever anything the user could list changes, so clients can poll with
    ``ETag``/``If-None-Match``; None when the backend cannot tell cheaply.
    ``modified`` is the newest time the inbox records (an arrival, a read, an
    archiving), for ``Last-Modified``.
    """

    unread: int
    max_level: int | None = None
    version: str | None = None
    modified: datetime | None = None


class BaseBackend:
    """
    Store messages and per-user inbox state.

    Subclasses implement every method below. Methods that change state return
    the ids they changed, so ``api`` can tell listeners exactly what happened.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options

    def on_commit(self, func) -> None:
        """
        Run ``func`` once the change it reports is durable.

        Signals and live events go out through here, so a listener never hears
        of a message that a rollback then removes. Stores outside the database
        still wait for the database transaction the call was made in.
        """
        transaction.on_commit(func)

    #: True when every method that can give a user unread messages (``send``,
    #: ``add``, ``mark_unread``, ``unarchive``) calls :meth:`changed`.
    #: Only then may the storage trust ``PIGEONHOLE["CACHE"]`` to say an inbox
    #: is still empty; a backend that leaves it False is always asked.
    tracks_versions = False

    def in_transaction(self) -> bool:
        """Return whether a change made now is still invisible to other connections."""
        return False

    def changed(self, user_ids: Iterable[Any] = (), *, everyone: bool = False) -> None:
        """
        Renew the inbox versions of users who may have new unread messages.

        Call it once the change is written. The versions are renewed at once,
        so this connection's own next read sees the change, and again after the
        commit when the change is still inside a transaction: a page that read
        the old versions and found nothing before the commit must not trust
        them afterwards. A rolled-back change only costs a query.
        """
        if pigeonhole_settings.CACHE is None:
            return
        ids = list(user_ids)
        if not ids and not everyone:
            return
        versions.bump(ids, everyone=everyone)
        if self.in_transaction():
            self.on_commit(lambda: versions.bump(ids, everyone=everyone))

    def changed_for(self, recipients: Recipients) -> None:
        """Renew versions after a send: per user for a few ids, the shared token otherwise."""
        if recipients.queryset is None and len(recipients.ids) <= versions.PER_USER_LIMIT:
            self.changed(recipients.ids)
        else:
            self.changed(everyone=True)

    # Writing ----------------------------------------------------------------
    def send(self, message: NewMessage, recipients: Recipients) -> Any:
        """Store ``message`` once and give every recipient an unread entry, atomically."""
        raise NotImplementedError("subclasses of BaseBackend must provide a send() method")

    def add(self, message: NewMessage, user_id: Any) -> StoredMessage:
        """
        Store ``message`` for one user and return their entry.

        The request path uses this: one message, one recipient, and the caller
        needs the entry back to show it without reading it again.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide an add() method")

    # Reading ----------------------------------------------------------------
    def list(
        self,
        user_id: Any,
        *,
        state: str = "unread",
        levels: Sequence[int] | None = None,
        tag: str | None = None,
        since: datetime | None = None,
        before: datetime | None = None,
        limit: int = 50,
        after: Any = None,
    ) -> list[StoredMessage]:
        """Return the user's entries, newest first, keyset-paged by ``after``."""
        raise NotImplementedError("subclasses of BaseBackend must provide a list() method")

    def get(self, user_id: Any, entry_id: Any) -> StoredMessage:
        """Return one entry of this user's, or raise ``MessageNotFound``."""
        raise NotImplementedError("subclasses of BaseBackend must provide a get() method")

    def count(self, user_id: Any) -> int:
        """Return how many unread, unarchived, unexpired entries the user has."""
        raise NotImplementedError("subclasses of BaseBackend must provide a count() method")

    def counts(self, user_id: Any) -> dict[str, int]:
        """
        Return how many visible entries the user has in each tab of an inbox page.

        Keys ``unread``, ``all`` (unarchived, read or not) and ``archived``.
        Counting every entry is for pages a user opens, not for every request:
        badges use ``count()`` or ``state()``.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide a counts() method")

    def state(self, user_id: Any) -> InboxState:
        """
        Return the user's ``InboxState`` in a fixed, small number of queries.

        Backends should override this: the fallback here reads up to 1000
        unread entries to find the highest level and reports no ``version``,
        which turns off conditional responses rather than risk a stale one.
        """
        unread = self.list(user_id, state="unread", limit=1000)
        return InboxState(
            unread=self.count(user_id),
            max_level=max((entry.level for entry in unread), default=None),
        )

    # Changing state ---------------------------------------------------------
    def mark_read(self, user_id: Any, ids: Sequence[Any], *, strict: bool = True) -> list[Any]:
        """
        Mark entries read and return the ids that were unread.

        With ``strict``, an id that is not the user's raises ``MessageNotFound``
        and nothing changes; the request path passes ``strict=False`` because it
        only marks entries it has just read itself.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide a mark_read() method")

    def mark_unread(self, user_id: Any, ids: Sequence[Any]) -> list[Any]:
        raise NotImplementedError("subclasses of BaseBackend must provide a mark_unread() method")

    def mark_all_read(self, user_id: Any, *, before: Any = None) -> list[Any]:
        """
        Mark read every unread, unarchived entry up to a watermark; return their ids.

        ``before`` is an entry id (inclusive) or a datetime (inclusive); entries
        that arrive after it stay unread, however the calls interleave.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide a mark_all_read() method")

    def archive(self, user_id: Any, ids: Sequence[Any]) -> list[Any]:
        raise NotImplementedError("subclasses of BaseBackend must provide an archive() method")

    def unarchive(self, user_id: Any, ids: Sequence[Any]) -> list[Any]:
        raise NotImplementedError("subclasses of BaseBackend must provide an unarchive() method")

    def delete(self, user_id: Any, ids: Sequence[Any], *, allow_unread: bool = False) -> list[Any]:
        """
        Delete entries and return their ids.

        Unless ``allow_unread``, an unread entry raises ``InvalidMessage``: it
        is too easy to lose a message nobody has seen.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide a delete() method")

    # Housekeeping -----------------------------------------------------------
    def expire(self, user_id: Any, ids: Sequence[Any], when: datetime | None = None) -> list[Any]:
        """Make entries expire at ``when`` (now by default): invisible from then on."""
        raise NotImplementedError("subclasses of BaseBackend must provide an expire() method")

    def purge(
        self,
        *,
        expired: bool = True,
        read_before: datetime | None = None,
        dry_run: bool = False,
    ) -> dict[str, int]:
        """
        Remove expired entries, and read ones older than ``read_before``.

        Return counts by kind (``expired``, ``read``, ``messages``) so commands
        can say what they did, or would do with ``dry_run``.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide a purge() method")

    # Email ------------------------------------------------------------------
    def unmailed_for_message(
        self, message_id: Any, *, after: Any = None, limit: int = 500
    ) -> list[StoredMessage]:
        """
        Return the message's visible entries not yet emailed, in id order.

        Pass ``after=`` the last id of the previous batch for the next one. The
        delivery task reads recipients here, so a retried task only looks at
        those who still have no email.
        """
        raise NotImplementedError(
            "subclasses of BaseBackend must provide an unmailed_for_message() method"
        )

    def unmailed_due(
        self, created_before: datetime, *, limit: int = 500, offset: int = 0
    ) -> list[StoredMessage]:
        """
        Return unread, unarchived, visible entries of every user that are not
        emailed yet and were created at or before ``created_before``, oldest first.

        Digests read here. The result is a snapshot, not a claim: two digest
        runs may both see an entry, and :meth:`claim_email` decides which sends it.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide an unmailed_due() method")

    def claim_email(self, ids: Sequence[Any], when: datetime) -> list[Any]:
        """
        Set ``emailed_at = when`` on those entries not emailed yet; return their ids.

        Atomic per entry: of any number of concurrent callers exactly one gets
        each entry back, so a retried task or a second digest run never emails
        the same entry twice. Expired and deleted entries are never claimed.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide a claim_email() method")

    def release_email(self, ids: Sequence[Any], when: datetime) -> list[Any]:
        """
        Undo the claims made at ``when`` on ``ids``; return the ids released.

        Called when an email could not be sent, so that a retry or a digest
        sends it later. A claim made by another caller (another ``when``) stays.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide a release_email() method")

    #: True when deleting a user already deletes their entries (a database
    #: foreign key with ``ON DELETE CASCADE``), so :meth:`forget_user` need not run.
    forgets_with_user = False

    def forget_user(self, user_id: Any) -> int:
        """
        Delete every entry of a user who has been deleted; return how many.

        A store outside the database would otherwise keep a deleted account's
        messages for ever. Contents left without entries go at the next purge,
        as with any deletion.
        """
        raise NotImplementedError("subclasses of BaseBackend must provide a forget_user() method")

    # Live delivery ----------------------------------------------------------
    def deliveries(self, message_id: Any, user_ids: Sequence[Any]) -> list[tuple[Any, int]]:
        """
        Return ``(entry, unread count)`` for each of ``user_ids`` with a visible entry
        of message ``message_id``, in as few round trips as the store allows.

        A process serving live streams reads a new message here once for all
        its streams' users, instead of once per stream; users who did not get
        the message are simply absent. A backend without it leaves each stream
        to read the store for itself.
        """
        raise NotImplementedError("subclasses of BaseBackend may provide a deliveries() method")
