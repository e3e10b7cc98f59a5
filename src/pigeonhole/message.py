"""
Backend-neutral message values.

``StoredMessage`` is what every backend returns and every template, serializer
and event sees. It subclasses Django's ``Message`` so code that renders
``{{ message }}``, ``message.tags`` or ``message.level_tag`` works unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.messages.storage import base as contrib_base
from django.contrib.messages.storage.base import Message
from django.utils.safestring import mark_safe

from .constants import PERSISTENT_TAG, STICKY_TAG, base_level

__all__ = ["NewMessage", "StickyMessage", "StoredMessage", "level_tag_for"]


def level_tag_for(level: int) -> str:
    """
    Return the CSS tag for ``level``, falling back to its base level's tag.

    A site's ``MESSAGE_TAGS`` entry for the exact level wins (sites migrating
    from django-messages-extends often have one); otherwise ``PERSISTENT_INFO``
    reads as ``info``, so ``alert-{{ message.level_tag }}`` keeps working.
    """
    tags: dict[int, str] = contrib_base.LEVEL_TAGS
    return tags.get(level) or tags.get(base_level(level), "")


def _join_tags(*parts: str) -> str:
    return " ".join(part for part in parts if part)


@dataclass(frozen=True, slots=True)
class NewMessage:
    """
    A validated message on its way to a backend.

    ``api`` builds it once from the caller's arguments, so every backend
    receives the same clean values and never has to validate.
    """

    level: int
    message: str
    subject: str = ""
    extra_tags: str = ""
    url: str = ""
    data: Any = None
    safe: bool = False
    from_user_id: Any = None
    target_content_type_id: int | None = None
    target_object_id: str = ""
    in_reply_to_id: int | None = None
    close_timeout: int | None = None
    email: bool | None = None
    expires: datetime | None = None
    created: datetime | None = None
    category: str | None = None
    thread: str | None = None
    reason: str = ""


class StoredMessage(Message):
    """
    One message as one recipient sees it: the content plus that recipient's state.

    ``id`` is the inbox entry's id, the id a user sees everywhere. ``message_id``
    is the shared content's id, for code that follows replies or targets.

    In a thread, the entry is the thread's row and shows its newest message:
    ``count`` is how many messages arrived since the user last read it and
    ``senders`` up to three of their most recent distinct senders' ids.
    """

    is_persistent = True

    def __init__(
        self,
        *,
        id: int,
        level: int,
        message: str,
        extra_tags: str = "",
        subject: str = "",
        url: str = "",
        data: Any = None,
        safe: bool = False,
        from_user_id: Any = None,
        message_id: Any = None,
        user_id: Any = None,
        target_content_type_id: int | None = None,
        target_object_id: str = "",
        in_reply_to_id: Any = None,
        close_timeout: int | None = None,
        created: datetime | None = None,
        read_at: datetime | None = None,
        archived_at: datetime | None = None,
        emailed_at: datetime | None = None,
        expires: datetime | None = None,
        category: str | None = None,
        email: bool | None = None,
        thread: str | None = None,
        reason: str = "",
        seen_at: datetime | None = None,
        saved_at: datetime | None = None,
        count: int = 1,
        senders: Any = (),
    ) -> None:
        super().__init__(level, mark_safe(message) if safe else message, extra_tags or "")
        self.id = id
        self.subject = subject
        self.url = url
        self.data = data
        self.safe = safe
        self.from_user_id = from_user_id
        self.message_id = message_id
        self.user_id = user_id
        self.target_content_type_id = target_content_type_id
        self.target_object_id = target_object_id
        self.in_reply_to_id = in_reply_to_id
        self.close_timeout = close_timeout
        self.created = created
        self.read_at = read_at
        self.archived_at = archived_at
        self.emailed_at = emailed_at
        self.expires = expires
        self.category = category
        self.email = email
        self.thread = thread or None
        self.reason = reason or ""
        self.seen_at = seen_at
        self.saved_at = saved_at
        self.count = count
        self.senders = list(senders)

    @classmethod
    def from_new(
        cls,
        new: NewMessage,
        *,
        id: Any,
        message_id: Any,
        user_id: Any,
        created: datetime | None,
        expires: datetime | None,
    ) -> StoredMessage:
        """
        Return the entry a backend has just written for ``new``.

        Backends pass the values as they store them (ids, rounded times), so
        the result equals what a later read returns.
        """
        return cls(
            id=id,
            message_id=message_id,
            user_id=user_id,
            created=created,
            expires=expires,
            level=new.level,
            message=new.message,
            extra_tags=new.extra_tags,
            subject=new.subject,
            url=new.url,
            data=new.data,
            safe=new.safe,
            from_user_id=new.from_user_id,
            target_content_type_id=new.target_content_type_id,
            target_object_id=new.target_object_id,
            in_reply_to_id=new.in_reply_to_id,
            close_timeout=new.close_timeout,
            category=new.category,
            email=new.email,
            thread=new.thread,
            reason=new.reason,
            senders=[new.from_user_id] if new.from_user_id is not None else [],
        )

    @property
    def pk(self) -> int:
        # Templates written for model-based stores link to ``message.pk``.
        return self.id

    @property
    def is_read(self) -> bool:
        return self.read_at is not None

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def seen(self) -> bool:
        """Whether the user has seen the entry in a list; reading it implies seeing it."""
        return self.seen_at is not None or self.read_at is not None

    @property
    def is_saved(self) -> bool:
        return self.saved_at is not None

    @property
    def level_tag(self) -> str:
        return level_tag_for(self.level)

    @property
    def tags(self) -> str:
        return _join_tags(self.extra_tags, self.level_tag, PERSISTENT_TAG)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StoredMessage):
            return self.id == other.id
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(("pigeonhole.StoredMessage", self.id))

    def __repr__(self) -> str:
        return f"StoredMessage(id={self.id!r}, level={self.level!r}, message={self.message!r})"


@dataclass
class StickyMessage(Message):
    """
    A message kept in the session until the user closes it.

    Its ``id`` is derived from its content, so adding the same sticky message
    on every request (from a middleware, say) shows it once, and once closed
    it stays closed for the session.
    """

    level: int
    message: str
    extra_tags: str = ""
    close_timeout: int | None = None
    safe: bool = False
    id: str = field(default="", compare=False)

    is_persistent = False

    def __post_init__(self) -> None:
        if self.safe:
            self.message = mark_safe(self.message)
        if not self.id:
            self.id = self.content_id(self.level, str(self.message), self.extra_tags)

    @staticmethod
    def content_id(level: int, message: str, extra_tags: str) -> str:
        digest = hashlib.sha256(f"{level}\x00{extra_tags}\x00{message}".encode()).hexdigest()
        return "s" + digest[:15]

    @property
    def level_tag(self) -> str:
        return level_tag_for(self.level)

    @property
    def tags(self) -> str:
        return _join_tags(self.extra_tags, self.level_tag, STICKY_TAG)

    def _prepare(self) -> None:
        self.message = str(self.message) if not self.safe else self.message

    def to_session(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "level": self.level,
            "message": str(self.message),
            "extra_tags": self.extra_tags,
            "close_timeout": self.close_timeout,
            "safe": self.safe,
        }

    @classmethod
    def from_session(cls, data: dict[str, Any]) -> StickyMessage:
        return cls(**data)

    def __str__(self) -> str:
        return str(self.message)
