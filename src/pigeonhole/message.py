"""
Backend-neutral message values.

``StoredMessage`` is what every backend returns and every template, serializer
and event sees. It subclasses Django's ``Message`` so code that renders
``{{ message }}``, ``message.tags`` or ``message.level_tag`` works unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar, TypeAlias

from django.contrib.messages.storage import base as contrib_base
from django.contrib.messages.storage.base import Message
from django.utils.safestring import mark_safe

from .constants import PERSISTENT_TAG, STICKY_TAG, base_level

__all__ = [
    "CONTENT_FIELDS",
    "STATE_FIELDS",
    "Content",
    "NewMessage",
    "StickyMessage",
    "StoredMessage",
    "level_tag_for",
]


def level_tag_for(level: int) -> str:
    """
    Return the CSS tag for ``level``, falling back to its base level's tag.

    A site's ``MESSAGE_TAGS`` entry for the exact level wins (sites migrating
    from django-messages-extends often have one); otherwise ``PERSISTENT_INFO``
    reads as ``info``, so ``alert-{{ message.level_tag }}`` keeps working.
    """
    tags: dict[int, str] = contrib_base.LEVEL_TAGS
    return tags.get(level) or tags.get(base_level(level), "")


class _Tagged:
    """
    ``level_tag`` and ``tags`` of a message that lasts beyond one request.

    ``tags`` adds ``kind_tag`` (``persistent``, ``sticky``) to Django's, so a
    template can style such messages apart.
    """

    level: int
    extra_tags: str
    kind_tag: ClassVar[str]

    @property
    def level_tag(self) -> str:
        return level_tag_for(self.level)

    @property
    def tags(self) -> str:
        return " ".join(part for part in (self.extra_tags, self.level_tag, self.kind_tag) if part)


#: A JSON value, as ``data`` holds it.
JSON: TypeAlias = Any

#: A user's primary key: an int, a string or a UUID, as ``AUTH_USER_MODEL`` defines it.
UserId: TypeAlias = Any


@dataclass
class Content:
    """
    What a message says: written once, however many people receive it.

    These are the columns of the ``Message`` model that every reader sees, and
    the fields of the Redis content hash. This dataclass is the one list of
    them: the stores' field lists and codecs are derived from it, so adding a
    field touches the model, its migration and this class. The time the
    message was sent and its expiry belong to each entry (``StoredMessage``)
    and to ``NewMessage``.
    """

    level: int
    message: str
    subject: str = ""
    extra_tags: str = ""
    url: str = ""
    data: JSON = None
    safe: bool = False
    from_user_id: UserId = None
    target_content_type_id: int | None = None
    target_object_id: str = ""
    in_reply_to_id: int | None = None
    close_timeout: int | None = None
    email: bool | None = None
    category: str | None = None
    thread: str | None = None
    reason: str = ""

    def content_values(self) -> dict[str, Any]:
        """Return the content fields' values by name, as the constructors take them."""
        return {name: getattr(self, name) for name in CONTENT_FIELDS}


#: The names of ``Content``'s fields, in their order.
CONTENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Content))


@dataclass
class NewMessage(Content):
    """
    A validated message on its way to a backend: its content, when it expires
    and when it was sent.

    ``api`` builds it once from the caller's arguments, so every backend
    receives the same clean values and never has to validate.
    """

    expires: datetime | None = None
    created: datetime | None = None


@dataclass(kw_only=True, eq=False, repr=False)
class StoredMessage(_Tagged, Content, Message):
    """
    One message as one recipient sees it: the content plus that recipient's state.

    ``id`` is the inbox entry's id, the id a user sees everywhere. ``message_id``
    is the shared content's id, for code that follows replies or targets.
    ``created`` and ``expires`` are the entry's: an entry can be made to expire
    on its own.

    In a thread, the entry is the thread's row and shows its newest message:
    ``count`` is how many messages arrived since the user last read it and
    ``senders`` up to three of their most recent distinct senders' ids.
    """

    is_persistent: ClassVar[bool] = True
    kind_tag: ClassVar[str] = PERSISTENT_TAG

    id: int
    #: 0 for an entry no store has written, such as a page's placeholder.
    message_id: int = 0
    user_id: UserId = None
    created: datetime | None = None
    read_at: datetime | None = None
    archived_at: datetime | None = None
    emailed_at: datetime | None = None
    expires: datetime | None = None
    seen_at: datetime | None = None
    saved_at: datetime | None = None
    count: int = 1
    senders: list[UserId] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Stores give back what they keep: "" for a thread or a reason that
        # is absent, None for extra tags; readers see one form of each.
        if self.safe:
            self.message = mark_safe(self.message)
        self.extra_tags = self.extra_tags or ""
        self.thread = self.thread or None
        self.reason = self.reason or ""
        self.senders = list(self.senders)

    @classmethod
    def from_new(
        cls,
        new: NewMessage,
        *,
        id: int,
        message_id: int,
        user_id: UserId,
        created: datetime | None,
        expires: datetime | None,
    ) -> StoredMessage:
        """
        Return the entry a backend has just written for ``new``.

        Backends pass the values as they store them (ids, rounded times), so
        the result equals what a later read returns.
        """
        return cls(
            **new.content_values(),
            id=id,
            message_id=message_id,
            user_id=user_id,
            created=created,
            expires=expires,
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

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StoredMessage):
            return self.id == other.id
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(("pigeonhole.StoredMessage", self.id))

    def __repr__(self) -> str:
        return f"StoredMessage(id={self.id!r}, level={self.level!r}, message={self.message!r})"


#: The names of the entry's own fields of ``StoredMessage``, those beyond its content.
STATE_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(StoredMessage) if f.name not in CONTENT_FIELDS
)


@dataclass
class StickyMessage(_Tagged, Message):
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
    kind_tag: ClassVar[str] = STICKY_TAG

    def __post_init__(self) -> None:
        if self.safe:
            self.message = mark_safe(self.message)
        if not self.id:
            self.id = self.content_id(self.level, str(self.message), self.extra_tags)

    @staticmethod
    def content_id(level: int, message: str, extra_tags: str) -> str:
        digest = hashlib.sha256(f"{level}\x00{extra_tags}\x00{message}".encode()).hexdigest()
        return "s" + digest[:15]

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
