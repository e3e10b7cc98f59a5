"""
Exceptions raised by pigeonhole.

Each failure mode has its own class so callers can catch exactly what they can
handle; all share ``PigeonholeError``. Messages name the fix, not only the fault.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "BackendUnavailable",
    "InvalidMessage",
    "MessageNotFound",
    "PersistenceUnavailable",
    "PigeonholeError",
]


class PigeonholeError(Exception):
    """Base class of every error pigeonhole raises on purpose."""


class PersistenceUnavailable(PigeonholeError, NotImplementedError):
    """
    A message could not be stored for lack of someone to store it for.

    A ``NotImplementedError`` too, as django-messages-extends raised for the
    same case, so code written against it keeps catching it.
    """


class InvalidMessage(PigeonholeError, ValueError):
    """The message, a recipient or an option is not acceptable as given."""


class BackendUnavailable(PigeonholeError):
    """The message store could not be reached."""

    #: Seconds a client should wait before asking again: the ``Retry-After`` of
    #: the 503 that the views and the REST API answer, so clients back off
    #: instead of hammering a store that is down.
    retry_after = 30


class MessageNotFound(PigeonholeError, LookupError):
    """
    No such message in this user's inbox.

    Raised alike for an id that does not exist, one that expired and one that
    belongs to someone else, so the error tells nothing about other inboxes.
    """

    def __init__(self, ids: Iterable[object] | int | str, message: str | None = None) -> None:
        self.ids = sorted(ids, key=str) if not isinstance(ids, int | str) else [ids]
        if message is None:
            shown = ", ".join(str(i) for i in self.ids[:10])
            more = f" and {len(self.ids) - 10} more" if len(self.ids) > 10 else ""
            message = (
                f"No message with id {shown}{more} in this user's inbox. "
                "Use the ids from pigeonhole.inbox(user) (the inbox entry ids)."
            )
        super().__init__(message)
