"""
The close-button views of django-messages-extends and django-monitio.

Both libraries changed state on GET; these take POST only, so Django's CSRF
protection covers them. The answers are theirs: an empty 200 to an AJAX
request, otherwise a redirect back to the page the user came from.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .. import api
from ..exceptions import InvalidMessage, MessageNotFound

__all__ = [
    "message_delete",
    "message_delete_all",
    "message_mark_all_read",
    "message_mark_read",
]

#: The most entries one "delete all" request removes, a page of ``inbox()`` at a time.
DELETE_ALL_LIMIT = 10_000


def _user(request: HttpRequest) -> object:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise PermissionDenied
    return user


def _answer(request: HttpRequest) -> HttpResponse:
    if request.headers.get("x-requested-with") == "XMLHttpRequest":
        return HttpResponse("")
    referer = request.headers.get("referer", "")
    # Only back to this site: a forged Referer must not turn this into an open redirect.
    if not url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        referer = "/"
    return HttpResponseRedirect(referer)


def _change(request: HttpRequest, change: Callable[[object], object]) -> HttpResponse:
    """
    Apply ``change(user)`` for the logged-in user and answer as the libraries did.

    An id that is not the user's is a 404; a change the store refuses (deleting
    an unread message without ``ALLOW_DELETE_UNREAD``) is a 403.
    """
    user = _user(request)
    try:
        change(user)
    except MessageNotFound:
        raise Http404("No such message in your inbox.") from None
    except InvalidMessage as exc:
        raise PermissionDenied(str(exc)) from None
    return _answer(request)


def _delete_all(user: object) -> None:
    """Delete the user's messages, a page of ``inbox()`` at a time, up to ``DELETE_ALL_LIMIT``."""
    for state in ("all", "archived"):
        ids = [entry.id for entry in api.inbox(user, state=state, limit=1000)]
        removed = 0
        while ids and removed < DELETE_ALL_LIMIT:
            count = api.delete(user, ids)
            if not count:
                break
            removed += count
            ids = [entry.id for entry in api.inbox(user, state=state, limit=1000)]


@require_POST
def message_mark_read(request: HttpRequest, message_id: int) -> HttpResponse:
    """Mark one of the user's messages read (the close button)."""
    return _change(request, lambda user: api.mark_read(user, [int(message_id)]))


@require_POST
def message_mark_all_read(request: HttpRequest) -> HttpResponse:
    """Mark all the user's messages read."""
    return _change(request, api.mark_all_read)


@require_POST
def message_delete(request: HttpRequest, message_id: int) -> HttpResponse:
    """Delete one of the user's messages; unread ones need ``ALLOW_DELETE_UNREAD``."""
    return _change(request, lambda user: api.delete(user, [int(message_id)]))


@require_POST
def message_delete_all(request: HttpRequest) -> HttpResponse:
    """Delete the user's messages, read and unread, archived included."""
    return _change(request, _delete_all)
