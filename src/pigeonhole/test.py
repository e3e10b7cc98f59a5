"""
Assertions for a project's own tests: "did alice get the message?"

They read through ``pigeonhole.inbox()`` and ``pigeonhole.unread_count()``, so
they hold whichever backend the project runs, and a failure lists what the
user does have, which is usually the quickest way to see what went wrong.

For pytest, the plain functions raise ``AssertionError``; for Django's
``TestCase``, ``PigeonholeTestMixin`` offers the same as ``assert*`` methods.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NoReturn

from .constants import level_variants
from .message import StoredMessage, level_tag_for

__all__ = [
    "PigeonholeTestMixin",
    "assert_inbox_count",
    "assert_not_sent",
    "assert_sent",
]

#: How many of the user's messages a failure lists.
SHOWN = 20
_PAGE = 1000


def _entries(user: Any, state: str) -> Iterator[StoredMessage]:
    """Yield every entry of ``state``, page by page, newest first."""
    from . import api

    after = None
    while True:
        page = api.inbox(user, state=state, limit=_PAGE, after=after)
        yield from page
        if len(page) < _PAGE:
            return
        after = page[-1].id


def _everything(user: Any) -> list[StoredMessage]:
    """Return every message the user can still see, archived ones included."""
    return [*_entries(user, "all"), *_entries(user, "archived")]


def _state(entry: StoredMessage) -> str:
    if entry.is_archived:
        return "archived"
    return "read" if entry.is_read else "unread"


def _describe(entry: StoredMessage) -> str:
    subject = f" subject={entry.subject!r}" if entry.subject else ""
    return f"#{entry.id} [{_state(entry)}] {entry.level_tag or entry.level}{subject}: {entry!s:.80}"


def _inventory(user: Any, entries: list[StoredMessage]) -> str:
    if not entries:
        return f"{user} has no messages."
    lines = [_describe(entry) for entry in entries[:SHOWN]]
    if len(entries) > SHOWN:
        lines.append(f"... and {len(entries) - SHOWN} more")
    return f"{user} has:\n  " + "\n  ".join(lines)


def _matches(entry: StoredMessage, text: Any, level: int | None, subject: str | None) -> bool:
    return (
        str(entry) == str(text)
        and (level is None or entry.level in level_variants(level))
        and (subject is None or entry.subject == subject)
    )


def _wanted(text: Any, level: int | None, subject: str | None) -> str:
    details = [f"level {level_tag_for(level) or level}"] if level is not None else []
    if subject is not None:
        details.append(f"subject {subject!r}")
    return f"{str(text)!r}" + (f" ({', '.join(details)})" if details else "")


def assert_inbox_count(user: Any, count: int, state: str = "unread") -> None:
    """
    Assert that ``user`` has ``count`` messages in ``state``.

    ``state`` is one of ``inbox()``'s: ``"unread"`` (the default, as the
    badge counts), ``"read"``, ``"all"`` (not archived) or ``"archived"``.
    """
    from . import api

    # The badge's own count for unread; counting pages for the other states.
    actual = api.unread_count(user) if state == "unread" else sum(1 for _ in _entries(user, state))
    if actual != count:
        raise AssertionError(
            f"{user} has {actual} {state} message{'s' if actual != 1 else ''}, "
            f"not {count}. {_inventory(user, _everything(user))}"
        )


def assert_sent(
    user: Any, text: Any, *, level: int | None = None, subject: str | None = None
) -> StoredMessage:
    """
    Assert that ``user`` has a message reading exactly ``text``; return it.

    Read and archived messages count: the message was sent, whatever the user
    did with it since. Expired ones do not, as no inbox shows them. ``level``
    matches as ``inbox(level=...)`` does, so ``INFO`` also finds
    ``PERSISTENT_INFO``.
    """
    entries = _everything(user)
    for entry in entries:
        if _matches(entry, text, level, subject):
            return entry
    raise AssertionError(
        f"{user} has no message {_wanted(text, level, subject)}. {_inventory(user, entries)}"
    )


def assert_not_sent(
    user: Any, text: Any, *, level: int | None = None, subject: str | None = None
) -> None:
    """Assert that ``user`` has no message reading exactly ``text``, in any state."""
    entries = _everything(user)
    found = [entry for entry in entries if _matches(entry, text, level, subject)]
    if found:
        raise AssertionError(
            f"{user} has message {_wanted(text, level, subject)}: "
            + "; ".join(_describe(entry) for entry in found[:SHOWN])
        )


class PigeonholeTestMixin:
    """
    Add pigeonhole's assertions to a ``TestCase``.

    ``msg`` is added to the failure message as ``unittest``'s own assertions
    do (honouring ``longMessage``).
    """

    def _pigeonhole_fail(self, error: AssertionError, msg: str | None) -> NoReturn:
        raise self.failureException(self._formatMessage(msg, str(error))) from None

    def assertInboxCount(
        self, user: Any, count: int, state: str = "unread", msg: str | None = None
    ) -> None:
        try:
            assert_inbox_count(user, count, state)
        except AssertionError as error:
            self._pigeonhole_fail(error, msg)

    def assertSent(
        self, user: Any, text: Any, *, msg: str | None = None, **match: Any
    ) -> StoredMessage:
        """Assert as ``assert_sent()`` does (``level=``, ``subject=``); return the message."""
        try:
            return assert_sent(user, text, **match)
        except AssertionError as error:
            self._pigeonhole_fail(error, msg)

    def assertNotSent(self, user: Any, text: Any, *, msg: str | None = None, **match: Any) -> None:
        """Assert as ``assert_not_sent()`` does (``level=``, ``subject=``)."""
        try:
            assert_not_sent(user, text, **match)
        except AssertionError as error:
            self._pigeonhole_fail(error, msg)
