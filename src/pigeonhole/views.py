"""
State-changing views: POST only, CSRF-protected, for the logged-in user alone.

Each answers JSON to a script (``Accept: application/json``) and redirects a
plain form back to where it came from, so the inbox works without JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.contrib.messages import get_messages
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import api
from .exceptions import InvalidMessage, MessageNotFound

__all__ = ["change_view", "close_sticky", "mark_all_read"]


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _next_url(request: HttpRequest) -> str:
    for candidate in (request.POST.get("next"), request.headers.get("Referer")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return candidate
    return "/"


def _answer(request: HttpRequest, changed: int) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"changed": changed, "unread": api.unread_count(request.user)})
    return HttpResponseRedirect(_next_url(request))


def _error(request: HttpRequest, status: int, text: str) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"error": text}, status=status)
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def _login_required(request: HttpRequest) -> HttpResponse | None:
    if request.user.is_authenticated:
        return None
    if _wants_json(request):
        return JsonResponse({"error": "Log in to change messages."}, status=401)
    return redirect_to_login(_next_url(request))


_ACTIONS: dict[str, Callable[[Any, Any], int]] = {
    "read": api.mark_read,
    "unread": api.mark_unread,
    "archive": api.archive,
    "unarchive": api.unarchive,
    "delete": api.delete,
}


@require_POST
def change_view(request: HttpRequest, action: str, entry_id: int) -> HttpResponse:
    """Apply one action to one of the user's messages."""
    if (denied := _login_required(request)) is not None:
        return denied
    try:
        changed = _ACTIONS[action](request.user, entry_id)
    except MessageNotFound:
        return _error(request, 404, f"No message {entry_id} in your inbox.")
    except InvalidMessage as exc:
        return _error(request, 403 if action == "delete" else 400, str(exc))
    return _answer(request, changed)


@require_POST
def mark_all_read(request: HttpRequest) -> HttpResponse:
    """
    Mark everything read, up to the ``before`` id the page showed.

    The form carries the newest id it displayed, so a message that arrived
    after the page loaded is not marked read unseen.
    """
    if (denied := _login_required(request)) is not None:
        return denied
    before = request.POST.get("before") or None
    if before is not None and not before.isdigit():
        return _error(request, 400, "before must be a message id.")
    return _answer(request, api.mark_all_read(request.user, before=before))


@require_POST
def close_sticky(request: HttpRequest, sticky_id: str) -> HttpResponse:
    """Close a sticky message for the rest of the session."""
    storage = get_messages(request)
    closed = storage.close_sticky(sticky_id) if hasattr(storage, "close_sticky") else False
    if _wants_json(request):
        return JsonResponse({"closed": closed})
    return HttpResponseRedirect(_next_url(request))
