"""
``{% load pigeonhole %}``: the unread count, the alerts, a short inbox and the script.

Each tag is a thin wrapper over a plain function of this module, so the
functions are tested (and reused) without a template around them. Every tag
that renders HTML goes through a template under ``pigeonhole/``, which a site
overrides like any app template.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import template
from django.contrib.messages import get_messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext as _

from .. import api
from ..conf import pigeonhole_settings
from ..storage import request_badge_count
from ..views.pages import with_senders

register = template.Library()

#: Bootstrap's contextual colour for each level tag (``text-bg-*``, ``alert-*``).
COLORS = {
    "debug": "secondary",
    "info": "info",
    "success": "success",
    "warning": "warning",
    "error": "danger",
}


def _user(context: template.Context, user: Any = None) -> Any:
    if user is not None:
        return user
    if "user" in context:
        return context["user"]
    request = context.get("request")
    return getattr(request, "user", None)


def script_config() -> dict[str, Any]:
    """Return what ``pigeonhole.js`` needs beyond its URLs: words and colours."""
    return {
        "colors": COLORS,
        "badge": pigeonhole_settings.BADGE,
        "strings": {
            "just_now": _("just now"),
            "new_message": _("New message"),
            "done_read": _("Marked read."),
            "done_unread": _("Marked unread."),
            "done_archive": _("Archived."),
            "done_unarchive": _("Moved back to the inbox."),
            "done_delete": _("Deleted."),
            "done_read_all": _("All shown messages marked read."),
            "done_reply": _("Reply sent."),
            "done_save": _("Saved."),
            "done_unsave": _("Unsaved."),
            "done_mute": _("Thread muted."),
            "done_unmute": _("Thread unmuted."),
            "failed": _("That did not work. Reload the page and try again."),
            "select_first": _("Select at least one message."),
        },
    }


def script_urls() -> dict[str, str]:
    """Return the URLs the script calls, reversed once per page."""
    return {
        "stream": reverse("pigeonhole:stream"),
        "count": reverse("pigeonhole:count"),
        "read": reverse("pigeonhole:read", args=[0]),
    }


def latest_entries(user: Any, *, limit: int = 5, state: str = "unread") -> list[Any]:
    """Return the user's newest entries, each with ``sender`` set, in two queries at most."""
    return with_senders(api.inbox(user, state=state, limit=limit))


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """Say how long ago ``value`` was, as people do: "just now", "3 hours ago"."""
    if value is None:
        return ""
    now = now or timezone.now()
    if now - value < timedelta(minutes=1):
        return _("just now")
    return _("%(delta)s ago") % {"delta": timesince(value, now, depth=1)}


@register.simple_tag(takes_context=True)
def pigeonhole_unread_count(context: template.Context, user: Any = None) -> int:
    """
    Return the badge count of ``user`` (default: the logged-in user); 0 when anonymous.

    Unread messages, or unseen ones with ``PIGEONHOLE["BADGE"] = "unseen"``.
    """
    request = context.get("request")
    if user is None and request is not None and _user(context) is getattr(request, "user", None):
        return request_badge_count(request)
    return api.badge_count(_user(context, user))


def displayed_messages(request: HttpRequest | None, *, persistent: bool = True) -> Any:
    """
    Return the messages to show as alerts on this request.

    With ``persistent=False`` stored messages are left out, and so not marked
    read: the inbox page lists them already. Transient and sticky messages are
    still consumed, as a display loop would.
    """
    if request is None:
        return []
    storage = get_messages(request)
    if persistent or not hasattr(storage, "consume_nonpersistent"):
        return storage
    return storage.consume_nonpersistent()


@register.inclusion_tag("pigeonhole/messages.html", takes_context=True)
def pigeonhole_messages(context: template.Context, persistent: bool = True) -> dict[str, Any]:
    """Render this request's messages as alerts that close by POST."""
    request: HttpRequest | None = context.get("request")
    return {
        "messages": displayed_messages(request, persistent=persistent),
        "next": request.get_full_path() if request is not None else "",
    }


@register.inclusion_tag("pigeonhole/inbox_list.html", takes_context=True)
def pigeonhole_inbox(
    context: template.Context, limit: int = 5, state: str = "unread", user: Any = None
) -> dict[str, Any]:
    """Render the user's newest entries, with a link to the inbox page."""
    user = _user(context, user)
    return {
        "entries": latest_entries(user, limit=limit, state=state),
        "state": state,
        "colors": COLORS,
        "live": state in ("unread", "all"),
    }


@register.inclusion_tag("pigeonhole/scripts.html", takes_context=True)
def pigeonhole_scripts(context: template.Context) -> dict[str, Any]:
    """Render the live client's ``<script>``: nothing for anonymous visitors."""
    user = _user(context)
    return {
        "enabled": bool(user is not None and user.is_authenticated),
        "urls": script_urls(),
        "config": script_config(),
    }


@register.inclusion_tag("pigeonhole/styles.html")
def pigeonhole_styles() -> dict[str, Any]:
    """Render the ``<link>`` to ``pigeonhole.css``, the styles for sites without Bootstrap."""
    return {}


@register.filter
def pigeonhole_color(level_tag: str) -> str:
    """Return Bootstrap's colour name for a level tag: ``error`` is ``danger``."""
    return COLORS.get(level_tag, "secondary")


@register.filter(name="pigeonhole_ago")
def pigeonhole_ago(value: datetime | None) -> str:
    """Template face of :func:`ago`: ``{{ entry.created|pigeonhole_ago }}``."""
    return ago(value)
