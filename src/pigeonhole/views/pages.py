"""
The inbox page: a user's messages in tabs, newest first, a page at a time.

Everything on it is a plain link or a POST form to the views in
``pigeonhole.views``, so it works without JavaScript; ``pigeonhole.js`` turns
the same forms into requests that change the page in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from .. import api, constants
from ..conf import pigeonhole_settings
from ..message import StoredMessage
from ..representation import senders_for
from .actions import unavailable_as_503

__all__ = ["PAGE_SIZE", "TABS", "Tab", "inbox", "inbox_context", "with_senders"]

#: Entries per page. Keyset paging keeps every page as cheap as the first.
PAGE_SIZE = 25

#: The tabs, as ``api.inbox()`` states with their labels.
TABS = {"unread": _("Unread"), "all": _("All"), "archived": _("Archived"), "saved": _("Saved")}

#: The buttons of the "select several" form.
ACTION_LABELS = {
    "read": _("Mark read"),
    "unread": _("Mark unread"),
    "archive": _("Archive"),
    "unarchive": _("Move to inbox"),
    "delete": _("Delete"),
    "unsave": _("Unsave"),
}

#: What the "select several" form offers on each tab.
BULK_ACTIONS = {
    "unread": ("read", "archive"),
    "all": ("read", "unread", "archive", "delete"),
    "archived": ("unarchive", "delete"),
    "saved": ("unsave",),
}


@dataclass(frozen=True)
class Tab:
    """One tab of the page, ready for the template: no logic left for it to do."""

    key: str
    label: Any
    url: str
    current: bool
    #: How many entries the tab holds.
    count: int = 0


def placeholder_entry() -> StoredMessage:
    """
    Return the entry rendered into the page's ``<template>`` for live messages.

    The script clones it for each message that arrives and fills in the text;
    id 0 makes its form actions easy to rewrite, and a sender and a thread
    make sure the reply and mute forms are there to show when the new message
    has them.
    """
    return StoredMessage(
        id=0,
        level=constants.PERSISTENT_INFO,
        message="",
        from_user_id=0,
        created=timezone.now(),
        thread="0",
    )


def with_senders(entries: list[StoredMessage]) -> list[StoredMessage]:
    """Set ``entry.sender`` (``senders_for()``'s dict, or None) on each entry, in one query."""
    senders = senders_for(entries)
    for entry in entries:
        entry.sender = senders.get(entry.from_user_id)
    return entries


def inbox_context(request: HttpRequest, state: str, after: str | None) -> dict[str, Any]:
    """Build the page's context; separate from the view so sites can reuse it."""
    user = request.user
    page = api.inbox(user, state=state, limit=PAGE_SIZE + 1, after=after)
    entries, more = with_senders(page[:PAGE_SIZE]), len(page) > PAGE_SIZE
    counted_at = timezone.now()
    counts = api.inbox_counts(user)
    unread = counts["unread"]
    path = request.path
    tabs = [
        Tab(key, label, f"{path}?{urlencode({'state': key})}", key == state, counts[key])
        for key, label in TABS.items()
    ]
    return {
        "state": state,
        "tabs": tabs,
        # Messages the stream brings that were sent after this are not in the counts yet.
        "counted_at": counted_at,
        "current_tab": TABS[state],
        "entries": entries,
        "unread_count": unread,
        "first_page": after is None,
        "next_page_url": (
            f"{path}?{urlencode({'state': state, 'after': entries[-1].id})}" if more else None
        ),
        "first_page_url": f"{path}?{urlencode({'state': state})}",
        # Mark all read stops at the newest entry shown: later arrivals stay unread.
        "newest_id": entries[0].id if entries and after is None and state != "archived" else None,
        # New messages are inserted live only where they belong: the top of a first page.
        "live": after is None and state != "archived",
        "bulk_actions": [(action, ACTION_LABELS[action]) for action in BULK_ACTIONS[state]],
        "next": request.get_full_path(),
        "allow_delete_unread": pigeonhole_settings.ALLOW_DELETE_UNREAD,
        "placeholder": placeholder_entry(),
        "muted_threads": set(api.muted_threads(user)) if entries else set(),
    }


@require_GET
@login_required
@unavailable_as_503
def inbox(request: HttpRequest) -> HttpResponse:
    """Show the logged-in user's inbox; ``?state=`` picks the tab, ``?after=`` the page."""
    state = request.GET.get("state", "unread")
    if state not in TABS:
        state = "unread"
    after = request.GET.get("after") or None
    if after is not None and not after.isdigit():
        after = None
    context = inbox_context(request, state, after)
    if context["entries"]:
        # The user has now been shown these, and everything older: the unseen badge clears.
        api.mark_seen(request.user, before=max(entry.id for entry in context["entries"]))
    return render(request, "pigeonhole/inbox.html", context)
