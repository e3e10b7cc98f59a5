"""
django-stored-messages' template tags: ``{% load stored_messages_tags %}``.

The library's tags came with its app; here they live in a library that a site
names in its template settings, so the old templates load them unchanged::

    TEMPLATES = [{..., "OPTIONS": {"libraries": {
        "stored_messages_tags": "pigeonhole.compat.stored_messages.templatetags",
    }}}]

The list template keeps the library's name, ``stored_messages/stored_messages_list.html``,
so a site's own version of it still wins. Each listed item renders as the
library's inbox rows did, ``[username] text``, and has the stored message's
attributes besides (``message.level``, ``message.url``, ...) and ``user``.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeData

from ... import api
from ...message import StoredMessage

__all__ = [
    "InboxRow",
    "register",
    "stored_messages_archive",
    "stored_messages_count",
    "stored_messages_list",
]

register = template.Library()

LIST_TEMPLATE = "stored_messages/stored_messages_list.html"


class InboxRow:
    """
    A listed message that prints as the library's inbox rows: ``[username] text``.

    Templates escape it as any text, unless the message was stored as safe
    HTML; any other attribute is the stored message's.
    """

    def __init__(self, user: Any, message: StoredMessage) -> None:
        self.user = user
        self.stored = message

    def __getattr__(self, name: str) -> Any:
        if name == "stored":  # not set yet (a copy being built): nothing to delegate to
            raise AttributeError(name)
        return getattr(self.stored, name)

    def __str__(self) -> str:
        # Text stored as safe HTML stays HTML; the user name around it is escaped.
        if isinstance(self.stored.message, SafeData):
            return format_html("[{}] {}", self.user, self.stored.message)
        return f"[{self.user}] {self.stored.message}"


def _user(context: template.Context) -> Any:
    user = context.get("user")
    return user if getattr(user, "is_authenticated", False) else None


def _listing(context: template.Context, state: str, num_elements: int) -> dict[str, Any]:
    user = _user(context)
    if user is None:
        return {"messages": [], "count": 0}
    count = api.unread_count(user) if state == "unread" else None
    messages = api.inbox(user, state=state, limit=max(1, min(int(num_elements), 1000)))
    rows = [InboxRow(user, message) for message in messages]
    return {"messages": rows, "count": len(messages) if count is None else count}


@register.inclusion_tag(LIST_TEMPLATE, takes_context=True)
def stored_messages_list(context: template.Context, num_elements: int = 10) -> dict[str, Any]:
    """The user's newest unread messages, and how many are unread in all."""
    return _listing(context, "unread", num_elements)


@register.simple_tag(takes_context=True)
def stored_messages_count(context: template.Context) -> int:
    """The user's unread count; ``{% stored_messages_count as n %}`` works as it did."""
    user = _user(context)
    return 0 if user is None else api.unread_count(user)


@register.inclusion_tag(LIST_TEMPLATE, takes_context=True)
def stored_messages_archive(context: template.Context, num_elements: int = 10) -> dict[str, Any]:
    """
    The user's newest messages, read or not.

    The library's archive kept every message a user had received; pigeonhole's
    "all" (archived entries aside) is the nearest match.
    """
    return _listing(context, "all", num_elements)
