"""
``pigeonhole.context_processors.unread_count``: the unread count in every template.

The count is lazy: a page that never shows it runs no query, so the processor
can sit in ``TEMPLATES`` for the whole site at no cost.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .storage import request_badge_count

__all__ = ["unread_count"]


def unread_count(request: HttpRequest) -> dict[str, Any]:
    """
    Offer ``pigeonhole_unread_count``, counted the first time a template uses it.

    It counts what badges show: unseen messages with ``PIGEONHOLE["BADGE"] = "unseen"``.
    """
    return {"pigeonhole_unread_count": SimpleLazyObject(lambda: request_badge_count(request))}
