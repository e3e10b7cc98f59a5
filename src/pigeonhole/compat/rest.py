"""
What the compatibility endpoints share: ids from the URL, and pages.

The old libraries answered a user's whole inbox at once. Here a list answers
the newest ``?limit=`` entries, at most ``MAX_PAGE_SIZE`` (the cap of
``pigeonhole.rest_framework``), and reads no more than that from the store, so
one crowded inbox cannot make every request slow.
"""

from __future__ import annotations

from typing import Any

from .. import api
from ..message import StoredMessage
from ..rest_framework.drf import Request, exceptions
from ..rest_framework.serializers import MAX_ID, MAX_PAGE_SIZE

__all__ = ["Entries", "entry_id_from", "limit_from"]

_CHUNK = 1000


def entry_id_from(value: Any) -> int | None:
    """
    Return the entry id in a URL, or None when it cannot be one.

    Digits other than ASCII, and numbers past what a database column holds,
    would fail in ``int()`` or in the database: they are ids of nothing.
    """
    text = str(value)
    if text.isascii() and text.isdigit() and 0 < int(text) <= MAX_ID:
        return int(text)
    return None


def limit_from(request: Request) -> int:
    """Return ``?limit=``, 1 to ``MAX_PAGE_SIZE`` (its default), or answer 400."""
    raw = request.query_params.get("limit")
    if raw is None:
        return MAX_PAGE_SIZE
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise exceptions.ValidationError(
            {"limit": [f"Use a whole number from 1 to {MAX_PAGE_SIZE}, got {raw!r}."]}
        )
    return int(raw)


class Entries:
    """
    A user's entries in one state, newest first, read only as far as a slice needs.

    DRF's paginators take ``count()`` and one slice of what they are given; a
    slice longer than ``MAX_PAGE_SIZE`` is cut to it, as ``LimitOffsetPagination``
    cuts a limit to its ``max_limit``. An offset still costs the entries before it.
    """

    def __init__(self, user: Any, state: str) -> None:
        self.user = user
        self.state = state

    def count(self) -> int:
        counts = api.inbox_counts(self.user)
        if self.state == "read":
            return counts["all"] - counts["unread"]
        return counts[self.state]

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list[StoredMessage]:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("Entries take a slice with no step, such as entries[:20].")
        start = max(index.start or 0, 0)
        stop = start + MAX_PAGE_SIZE
        if index.stop is not None:
            stop = min(stop, index.stop)
        found: list[StoredMessage] = []
        while len(found) < stop:
            wanted = min(_CHUNK, stop - len(found))
            after = found[-1].id if found else None
            page = api.inbox(self.user, state=self.state, limit=wanted, after=after)
            found.extend(page)
            if len(page) < wanted:
                break
        return found[start:stop]
