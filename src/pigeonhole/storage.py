"""
``MESSAGE_STORAGE = "pigeonhole.storage.PersistentStorage"``.

Plain levels behave exactly as Django's ``FallbackStorage`` (cookie, then
session). Levels in ``STORE_LEVELS`` are written to the backend for the
logged-in user and shown until read; sticky levels stay in the session until
the user closes them. Nothing is read until the messages are: a request that
never looks at them costs no query.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase

from . import service, versions
from .conf import pigeonhole_settings
from .constants import base_level
from .exceptions import BackendUnavailable, InvalidMessage, PersistenceUnavailable
from .message import StickyMessage, StoredMessage
from .validation import check_close_timeout, check_tags, check_text

__all__ = [
    "PersistentStorage",
    "PersistentStorageMixin",
    "request_badge_count",
    "request_unread_count",
]

logger = logging.getLogger("pigeonhole")

if TYPE_CHECKING:  # the mixin goes before a contrib.messages storage, which it extends
    from django.contrib.messages.storage.base import BaseStorage as _StorageBase
else:
    _StorageBase = object


class _Outcome(enum.Enum):
    #: What storing for another user returns when they turned the category's inbox off.
    OPTED_OUT = "opted out"


_OPTED_OUT = _Outcome.OPTED_OUT


class PersistentStorageMixin(_StorageBase):
    """
    Add stored and sticky messages to any ``contrib.messages`` storage class.

    Put it first: ``class MyStorage(PersistentStorageMixin, SessionStorage)``.
    """

    #: How many unread stored messages one page shows (and marks read) at most;
    #: the rest wait for the next page, so a full inbox never floods one.
    display_limit = 100
    #: Session key holding sticky messages and the ids of those closed.
    sticky_session_key = "_pigeonhole_sticky"
    #: How many closed sticky ids the session remembers.
    closed_sticky_limit = 100
    #: Session key noting the inbox versions at which the user had nothing unread.
    empty_session_key = "_pigeonhole_empty"
    if TYPE_CHECKING:  # set by the contrib.messages storage the mixin goes before
        _loaded_messages: list[Message]
        _queued_messages: list[Message]

    #: Seconds that note is trusted. A version renewal lost to a cache outage
    #: can only hide a message this long.
    empty_hint_seconds = 300

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(request, *args, **kwargs)
        self._persistent: list[StoredMessage] | None = None
        self._shown: list[int] = []
        # Ids marked read when the display loop loaded them, and whether it may.
        self._claimed: list[int] = []
        self._may_claim = True

    # Who the messages belong to ---------------------------------------------
    def get_user(self) -> AbstractBaseUser | None:
        """Return the logged-in user, or None: only they have stored messages."""
        user: AbstractBaseUser | None = getattr(self.request, "user", None)
        return None if service.is_anonymous(user) else user

    # Adding -------------------------------------------------------------------
    def add(  # type: ignore[override]  # returns what it stored; Django's add() returns None
        self,
        level: Any,
        message: Any,
        extra_tags: Any = "",
        *,
        fail_silently: bool = False,
        user: Any = None,
        **options: Any,
    ) -> StoredMessage | StickyMessage | None:
        """
        Queue a transient message, store a persistent one, or keep a sticky one.

        ``user=`` stores the message for someone else (whatever its level).
        Return the stored or sticky message, None for a transient one.
        """
        if not message:
            return None
        try:
            level = int(level)
        except (TypeError, ValueError):
            raise InvalidMessage(
                f"level must be an integer such as messages.INFO, got {level!r}."
            ) from None
        if user is None and level < self.level:
            return None
        if extra_tags is not None and not isinstance(extra_tags, str):
            extra_tags = check_tags(extra_tags)  # a list of tags, as send() takes
        # An empty option (a blank form field) asks for nothing.
        options = {key: value for key, value in options.items() if value not in (None, "")}
        if user is not None or level in pigeonhole_settings.STORE_LEVELS:
            recipient = user if user is not None else self.get_user()
            if recipient is not None:
                stored = self._store_persistent(
                    recipient, level, message, extra_tags, fail_silently, options
                )
                if stored is _OPTED_OUT:
                    return None
                if stored is not None:
                    return stored
            elif pigeonhole_settings.ANONYMOUS == "raise":
                raise PersistenceUnavailable(
                    "Cannot store a message for an anonymous user. Log the user in first, "
                    "use a plain level such as messages.INFO, or set "
                    "PIGEONHOLE['ANONYMOUS'] = 'flash' to show it once instead."
                )
            # Shown once, like any flash message, under its familiar level.
            level = base_level(level)
        elif level in pigeonhole_settings.STICKY_LEVELS:
            return self._add_sticky(level, message, extra_tags, **options)
        elif options:
            raise InvalidMessage(
                f"Options {', '.join(sorted(options))}: these apply to stored messages only; "
                "use a level in PIGEONHOLE['STORE_LEVELS'] such as pigeonhole.PERSISTENT_INFO."
            )
        super().add(level, message, extra_tags)
        return None

    def _store_persistent(
        self,
        recipient: Any,
        level: int,
        message: Any,
        extra_tags: Any,
        fail_silently: bool,
        options: dict[str, Any],
    ) -> StoredMessage | Literal[_Outcome.OPTED_OUT] | None:
        try:
            stored = service.store_for_user(
                recipient, level, message, extra_tags=extra_tags, **options
            )
        except BackendUnavailable:
            if not fail_silently:
                raise
            logger.exception("Could not store a message; showing it once instead.")
            return None
        if stored is None:
            # The recipient turned this category's inbox off: nothing is kept,
            # and nobody else's request shows it.
            return None if recipient.pk == getattr(self.get_user(), "pk", None) else _OPTED_OUT
        if self._persistent is not None and recipient.pk == getattr(self.get_user(), "pk", None):
            self._persistent.append(stored)
        return stored

    # Reading ----------------------------------------------------------------
    def _load_persistent(self, *, display: bool = False) -> list[StoredMessage]:
        """
        Read the unread messages this request shows, once.

        The display loop (``display``: iterating, or asking the length as
        ``{% for %}`` and ``{% if %}`` do first) with ``READ_ON_DISPLAY`` claims
        them: it reads them and marks them read in one step (one statement on
        most databases). A claim holds only for messages the response finds
        iterated and the storage ``used``; ``update()`` gives the rest back.
        """
        if self._persistent is None:
            user = self.get_user()
            self._persistent = []
            if user is not None:
                seen = self._inbox_versions(user)
                if seen is not None and self._known_empty(user, seen):
                    return self._persistent
                try:
                    if display and self._may_claim and pigeonhole_settings.READ_ON_DISPLAY:
                        newest = service.claim_unread(user, limit=self.display_limit)
                        self._claimed = [message.id for message in newest]
                    else:
                        newest = service.inbox(user, state="unread", limit=self.display_limit)
                except BackendUnavailable:
                    # The page still renders, with its transient messages.
                    logger.exception("Could not read stored messages.")
                else:
                    self._persistent = newest[::-1]  # oldest first, as they arrived
                    if not newest:
                        self._remember_empty(user, seen)
        return self._persistent

    # Knowing an inbox is empty without asking ------------------------------------
    def _notes_kept(self) -> bool:
        return (
            pigeonhole_settings.CACHE is not None
            and getattr(self.request, "session", None) is not None
            and service.tracks_versions()
        )

    def _empty_note(self) -> Any:
        """
        Return the session's note of an empty inbox, or None.

        Only a session with a note reads the cache, so pages of users who keep
        getting messages (or of sites without ``PIGEONHOLE["CACHE"]``) pay nothing.
        """
        return self.request.session.get(self.empty_session_key) if self._notes_kept() else None

    def _inbox_versions(self, user: AbstractBaseUser) -> tuple[str, str] | None:
        """
        Return the user's inbox versions when a note may be checked or renewed.

        They must be read before the store is: a message committed between the
        two renews them, so a note taken on an empty listing never outlives it.
        """
        if self._empty_note() is None:
            return None
        return versions.read(user.pk)

    def _known_empty(self, user: AbstractBaseUser, seen: tuple[str, str]) -> bool:
        note = self._empty_note()
        return (
            isinstance(note, list)
            and len(note) == 4
            and note[:3] == [str(user.pk), *seen]
            and isinstance(note[3], int | float)
            and time.time() < note[3]
        )

    def _remember_empty(self, user: AbstractBaseUser, seen: tuple[str, str] | None) -> None:
        """
        Note that the inbox was empty at ``seen``.

        Without versions read beforehand, the note is only a placeholder that
        never holds: it makes the next page read them first.
        """
        if not self._notes_kept():
            return
        if seen is None:
            if self._empty_note() is None:
                self.request.session[self.empty_session_key] = [str(user.pk), "", "", 0]
            return
        expires = int(time.time()) + self.empty_hint_seconds
        self.request.session[self.empty_session_key] = [str(user.pk), *seen, expires]

    def _transient(self) -> list[Message]:
        return [*self._loaded_messages, *self._queued_messages]

    def _everything(self) -> list[Message]:
        return [*self.get_sticky(), *self._load_persistent(), *self._transient()]

    def __iter__(self) -> Iterator[Message]:
        transient = list(super().__iter__())
        persistent = self._load_persistent(display=True)
        self._shown = [message.id for message in persistent]
        return iter([*self.get_sticky(), *persistent, *transient])

    def __len__(self) -> int:
        # A template's {% for %} and {% if %} ask the length before iterating.
        persistent = self._load_persistent(display=True)
        return super().__len__() + len(self.get_sticky()) + len(persistent)

    def __getitem__(self, index: int) -> Message:
        return self._everything()[index]

    def __contains__(self, item: object) -> bool:
        """Match a message, its text, or (given an int) its level."""
        everything = self._everything()
        if isinstance(item, int) and not isinstance(item, bool):
            return any(message.level == item for message in everything)
        if isinstance(item, str):
            return any(str(message) == item for message in everything)
        return item in everything

    # Marking read -------------------------------------------------------------
    def update(self, response: HttpResponseBase) -> list[Message] | None:
        unstored = super().update(response)
        if self.used and pigeonhole_settings.READ_ON_DISPLAY:
            self.mark_shown_read()
        else:
            self._release_claimed()
        return unstored

    def mark_shown_read(self) -> int:
        """Mark the stored messages this request displayed as read; return how many."""
        ids, self._shown = self._shown, []
        shown = set(ids)
        claimed = [pk for pk in self._claimed if pk in shown]
        self._claimed = [pk for pk in self._claimed if pk not in shown]
        self._release_claimed()  # counted, never iterated
        user = self.get_user()
        if not ids or user is None:
            return 0
        taken = set(claimed)
        rest = [pk for pk in ids if pk not in taken]
        try:
            return len(service.apply_read(user, rest, strict=False, claimed=claimed))
        except BackendUnavailable:
            logger.exception("Could not mark displayed messages read.")
            return 0

    def _release_claimed(self) -> None:
        """
        Make unread again what the display loop claimed but the response did not show.

        ``storage.used = False`` after iterating keeps messages for the next
        page, as with Django's storages; a claim costs this one ``UPDATE`` then.
        """
        claimed, self._claimed = self._claimed, []
        user = self.get_user()
        if not claimed or user is None:
            return
        try:
            service.release_claimed(user, claimed)
        except BackendUnavailable:
            logger.exception("Could not keep displayed messages unread.")

    def __enter__(self) -> Self:
        # The block marks what it displayed on the way out, and only then.
        self._may_claim = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        self._may_claim = True
        if exc_type is None:
            self.mark_shown_read()
        else:
            self._release_claimed()
        return False

    # Template helpers -----------------------------------------------------------
    def get_persistent(self) -> list[StoredMessage]:
        """
        Return the newest stored messages, read or not (archived ones excluded).

        Oldest first, in the order the display loop uses.
        """
        user = self.get_user()
        if user is None:
            return []
        return service.inbox(user, state="all", limit=self.display_limit)[::-1]

    def get_persistent_unread(self) -> list[StoredMessage]:
        return list(self._load_persistent())

    def get_nonpersistent(self) -> list[Message]:
        return [*self.get_sticky(), *self._transient()]

    def consume_nonpersistent(self) -> list[Message]:
        """
        Return sticky, then transient messages, the transient ones displayed.

        Iterate as the storage's own loop does, stored messages left out: the
        storage is used, and messages added on this request join those shown
        instead of staying queued, which would store them for the next request.
        """
        transient = list(super().__iter__())
        return [*self.get_sticky(), *transient]

    def count_persistent_unread(self) -> int:
        """Return the user's whole unread count, not only what one page shows."""
        user = self.get_user()
        if user is None:
            return 0
        seen = self._inbox_versions(user)
        if seen is not None and self._known_empty(user, seen):
            return 0
        # Claimed messages are unread for this request until its response.
        return service.unread_count(user) + len(self._claimed)

    def count_unread(self) -> int:
        return self.count_persistent_unread() + len(self.get_nonpersistent())

    # Sticky messages ------------------------------------------------------------
    def _sticky_state(self) -> dict[str, list[Any]]:
        session = getattr(self.request, "session", None)
        if session is None:
            raise ImproperlyConfigured(
                "Sticky messages are kept in the session: add "
                "'django.contrib.sessions.middleware.SessionMiddleware' to MIDDLEWARE."
            )
        state = session.get(self.sticky_session_key)
        if not isinstance(state, dict):
            state = {"items": [], "closed": []}
        return state

    def _save_sticky(self, state: dict[str, list[Any]]) -> None:
        self.request.session[self.sticky_session_key] = state

    def get_sticky(self) -> list[StickyMessage]:
        if getattr(self.request, "session", None) is None:
            return []
        return [StickyMessage.from_session(item) for item in self._sticky_state()["items"]]

    def _add_sticky(
        self, level: int, message: Any, extra_tags: Any, close_timeout: Any = None, **options: Any
    ) -> StickyMessage:
        if options:
            raise InvalidMessage(
                f"Options {', '.join(sorted(options))}: these do not apply to sticky messages, "
                "which live in the session; use a level in STORE_LEVELS to store them."
            )
        text, safe = check_text(message)
        sticky = StickyMessage(
            level=level,
            message=text,
            extra_tags=extra_tags or "",
            close_timeout=check_close_timeout(close_timeout),
            safe=safe,
        )
        state = self._sticky_state()
        known = {item["id"] for item in state["items"]}
        if sticky.id not in known and sticky.id not in state["closed"]:
            state["items"].append(sticky.to_session())
            self._save_sticky(state)
        return sticky

    def close_sticky(self, sticky_id: str) -> bool:
        """Close a sticky message for the rest of the session; return whether it was open."""
        if getattr(self.request, "session", None) is None:
            return False  # without a session no sticky message was ever shown
        state = self._sticky_state()
        remaining = [item for item in state["items"] if item["id"] != sticky_id]
        if len(remaining) == len(state["items"]):
            return False
        closed = [*state["closed"], sticky_id][-self.closed_sticky_limit :]
        self._save_sticky({"items": remaining, "closed": closed})
        return True


class PersistentStorage(PersistentStorageMixin, FallbackStorage):
    """Django's ``FallbackStorage`` plus stored and sticky messages."""

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        # Without sessions (a token-only API) flash messages go by cookie alone; stored ones
        # need none, and adding a sticky one says what is missing.
        if not hasattr(request, "session"):
            self.storage_classes = (CookieStorage,)
        super().__init__(request, *args, **kwargs)


def request_badge_count(request: HttpRequest) -> int:
    """
    Return what the request's user's badge shows: see ``PIGEONHOLE["BADGE"]``.

    A badge sits on every page of a site, so a store that cannot be reached
    shows 0 and is logged rather than turning each page into a server error;
    the inbox's own pages answer 503 instead.
    """
    try:
        if pigeonhole_settings.BADGE == "unseen":
            return service.unseen_count(getattr(request, "user", None))
        return request_unread_count(request)
    except BackendUnavailable:
        logger.exception("Could not read the badge count; showing 0.")
        return 0


def request_unread_count(request: HttpRequest) -> int:
    """
    Return the unread count of the request's user, for a badge on every page.

    When the request's message storage is pigeonhole's, it answers: with
    ``PIGEONHOLE["CACHE"]`` set, a user known to have nothing unread costs no
    query at all, as the messages loop does.
    """
    storage = getattr(request, "_messages", None)
    if isinstance(storage, PersistentStorageMixin):
        return storage.count_persistent_unread()
    return service.unread_count(getattr(request, "user", None))
