"""
State-changing views: POST only, CSRF-protected, for the logged-in user alone.

Each answers JSON to a script (``Accept: application/json``) and redirects a
plain form back to where it came from, so the inbox works without JavaScript.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.contrib.messages import get_messages
from django.core.handlers.asgi import ASGIRequest
from django.db import transaction
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.utils.cache import get_conditional_response, patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from .. import api
from ..auth import load_user
from ..brokers.base import ProcessAtCapacity, TooManySubscriptions
from ..conf import get_broker, pigeonhole_settings
from ..exceptions import BackendUnavailable, InvalidMessage, MessageNotFound
from ..live import (
    WINDOW,
    Cursor,
    EventStream,
    Snapshot,
    StoreReads,
    process_stream_limit,
)
from ..representation import count_to_dict

__all__ = [
    "bulk",
    "change_view",
    "close_sticky",
    "count",
    "mark_all_read",
    "mute_view",
    "reply",
    "store_unavailable",
    "stream",
    "unavailable_as_503",
]

logger = logging.getLogger("pigeonhole")


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
        counts = api.inbox_counts(request.user)
        return JsonResponse({"changed": changed, "unread": counts["unread"], "counts": counts})
    return HttpResponseRedirect(_next_url(request))


def _error(request: HttpRequest, status: int, text: str) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"error": text}, status=status)
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def store_unavailable(
    request: HttpRequest, exc: BackendUnavailable, *, page: bool = True
) -> HttpResponse:
    """
    Answer 503 with ``Retry-After``: the store is down, not the request wrong.

    A script (or ``page=False``) gets JSON; a browser gets
    ``pigeonhole/unavailable.html``, which extends nothing, so a site's base
    template that shows the unread count cannot fail a second time.
    """
    logger.warning("Answered 503 to %s: %s", request.path, exc)
    seconds = exc.retry_after
    text = _("Messages are unavailable for a moment. Try again in %(seconds)d seconds.") % {
        "seconds": seconds
    }
    if page and not _wants_json(request):
        # A link to load the page again, or back to the page a form was sent from.
        again = request.get_full_path() if request.method == "GET" else _next_url(request)
        context = {"text": text, "retry_after": seconds, "again": again}
        response = render(request, "pigeonhole/unavailable.html", context, status=503)
    else:
        response = JsonResponse({"error": text}, status=503)
    response["Retry-After"] = str(seconds)
    return response


def unavailable_as_503(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate a view so that an unreachable store is a 503 (``store_unavailable()``)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except BackendUnavailable as exc:
            return store_unavailable(request, exc)

    return wrapper


def _login_required(request: HttpRequest) -> HttpResponse | None:
    if request.user.is_authenticated:
        return None
    if _wants_json(request):
        return JsonResponse({"error": "Log in to change messages."}, status=401)
    return redirect_to_login(_next_url(request))


_ACTIONS: dict[str, Callable[..., int]] = {
    "read": api.mark_read,
    "unread": api.mark_unread,
    "archive": api.archive,
    "unarchive": api.unarchive,
    "delete": api.delete,
    "save": api.save,
    "unsave": api.unsave,
}


def _change_one(
    request: HttpRequest, entry_id: int, change: Callable[[object], int], refused: int = 400
) -> HttpResponse:
    """
    Apply ``change(user)`` to one of the user's messages and answer as the page expects.

    An id that is not the user's is a 404; a change the store refuses
    (``InvalidMessage``) answers ``refused``.
    """
    if (denied := _login_required(request)) is not None:
        return denied
    try:
        changed = change(request.user)
    except MessageNotFound:
        return _error(request, 404, f"No message {entry_id} in your inbox.")
    except InvalidMessage as exc:
        return _error(request, refused, str(exc))
    return _answer(request, changed)


@require_POST
@unavailable_as_503
def change_view(request: HttpRequest, action: str, entry_id: int) -> HttpResponse:
    """Apply one action to one of the user's messages."""
    refused = 403 if action == "delete" else 400
    return _change_one(request, entry_id, lambda user: _ACTIONS[action](user, entry_id), refused)


@require_POST
@unavailable_as_503
def mute_view(request: HttpRequest, entry_id: int, muted: bool) -> HttpResponse:
    """Mute (or unmute) the thread of one of the user's messages."""

    def mute(user: object) -> int:
        return int((api.mute if muted else api.unmute)(user, api.get(user, entry_id)))

    return _change_one(request, entry_id, mute)


#: The most entries one bulk request may change: the inbox page shows fewer.
BULK_LIMIT = 500


@require_POST
@unavailable_as_503
def bulk(request: HttpRequest) -> HttpResponse:
    """
    Apply one action to several of the user's messages: the inbox's checkboxes.

    Ids that are not the user's change nothing and are not reported, so a stale
    page (a message deleted in another tab) still changes the rest.
    """
    if (denied := _login_required(request)) is not None:
        return denied
    action = request.POST.get("action", "")
    if action not in _ACTIONS:
        return _error(request, 400, _("Choose one of: %s.") % ", ".join(_ACTIONS))
    raw = request.POST.getlist("ids")
    if not raw:
        return _error(request, 400, _("Select at least one message."))
    if len(raw) > BULK_LIMIT or not all(value.isdigit() for value in raw):
        return _error(request, 400, _("ids must be at most %d message ids.") % BULK_LIMIT)
    ids = [int(value) for value in dict.fromkeys(raw)]
    try:
        changed = _ACTIONS[action](request.user, ids, strict=False)
    except InvalidMessage as exc:
        return _error(request, 403 if action == "delete" else 400, str(exc))
    return _answer(request, changed)


@require_POST
@unavailable_as_503
def reply(request: HttpRequest, entry_id: int) -> HttpResponse:
    """Answer one of the user's messages; the reply goes to its sender."""
    if (denied := _login_required(request)) is not None:
        return denied
    text = request.POST.get("message", "").strip()
    if not text:
        return _error(request, 400, _("Write a reply first."))
    try:
        api.reply(request.user, entry_id, text)
    except MessageNotFound:
        return _error(request, 404, _("No message %d in your inbox.") % entry_id)
    except InvalidMessage as exc:
        return _error(request, 400, str(exc))
    return _answer(request, 1)


@require_POST
@unavailable_as_503
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


# Live updates -------------------------------------------------------------


class EventStreamResponse(StreamingHttpResponse):
    """
    A ``text/event-stream`` response that gives up its subscription when closed.

    The stream's own ``finally`` does that once it has started; ``close()``
    covers a client that left before the first frame was sent.
    """

    def __init__(self, events: EventStream) -> None:
        super().__init__(events, content_type="text/event-stream; charset=utf-8")
        self.subscription = events.subscription
        #: The stream's own frames, as ``streaming_content`` was set to them.
        self.frames = getattr(self, "_iterator", None)
        # Proxies must neither cache nor buffer: each event goes out as it happens.
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"

    def __aiter__(self) -> Any:
        """
        Return the stream's frames to the ASGI handler as they are: bytes, one write each.

        Django would wrap them in two more async generators and look the charset
        up for each write; for a broadcast to thousands of streams that costs
        more than the frames, and leaves two more objects per stream for the
        garbage collector each time. If a middleware replaced the content, its
        frames go through Django's own iteration as usual.
        """
        if self.frames is not None and getattr(self, "_iterator", None) is self.frames:
            return self.frames
        return super().__aiter__()

    def close(self) -> None:
        self.subscription.close()
        super().close()


def _stream_refused(status: int, text: str) -> HttpResponse:
    response = JsonResponse({"error": text}, status=status)
    response["Retry-After"] = "30"
    return response


@transaction.non_atomic_requests  # an open stream must not hold a transaction
@require_GET
async def stream(request: HttpRequest) -> HttpResponse:
    """
    Stream the logged-in user's events (Server-Sent Events), under ASGI.

    ``Last-Event-ID`` (or ``?last_event_id=``, for a client that reopens the
    connection itself) resumes where the client left off; ``pigeonhole.live``
    explains the cursor. Under WSGI, which cannot hold thousands of idle
    connections, the answer is 204, which tells ``EventSource`` to stop
    retrying and the JavaScript client to poll ``pigeonhole:count`` instead.
    """
    # Under ASGI the user is loaded with the other streams' store reads, a few
    # connections for a reconnect storm of thousands (see live.StoreReads), not
    # by request.auser() on a new connection of the request's own for each;
    # a reader's batch loads its sessions and users together (pigeonhole.auth).
    # Under WSGI there are no streams to share with: the request's own
    # connection (and transaction, in a test) is the one that sees the session.
    if isinstance(request, ASGIRequest):
        user = await StoreReads.for_loop().run(load_user, request)
    else:
        user = await request.auser()
    request.user = user
    if not user.is_authenticated:
        return JsonResponse({"error": "Log in to receive messages."}, status=401)
    if not isinstance(request, ASGIRequest):
        return HttpResponse(status=204)
    settings = pigeonhole_settings
    try:
        subscription = get_broker().subscribe(
            user.pk,
            limit=settings.STREAM_MAX_PER_USER,
            process_limit=process_stream_limit(settings.STREAM_MAX_PER_PROCESS),
        )
    except TooManySubscriptions:
        return _stream_refused(
            429, "Too many open message streams; close a tab or try again later."
        )
    except ProcessAtCapacity:
        # The server, not the user, is at its limit: another process may have room.
        return _stream_refused(503, "This server holds all the message streams it can; try again.")
    cursor = Cursor.parse(request.headers.get("Last-Event-ID") or request.GET.get("last_event_id"))
    events = EventStream(
        user.pk,
        subscription,
        cursor=cursor,
        keepalive=settings.STREAM_KEEPALIVE,
        replay_limit=settings.STREAM_REPLAY_LIMIT,
    )
    return EventStreamResponse(events)


@require_GET
def count(request: HttpRequest) -> HttpResponse:
    """
    Answer the unread count, the highest unread level and the newest entry id, for polling.

    The count and the level are the REST count's, from one ``state()`` read.
    The ``ETag`` changes whenever they, the newest entry or the read state of
    the newest entries do, so an unchanged poll costs a 304 and no body.
    ``X-Poll-Interval`` says how many seconds to wait before the next.
    """
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Log in to receive messages."}, status=401)
    try:
        state = api.inbox_state(request.user)
        newest = Snapshot(api.inbox(request.user, state="all", limit=WINDOW), state.unread, {})
    except BackendUnavailable as exc:
        return store_unavailable(request, exc, page=False)
    cursor = newest.cursor()
    etag = f'"{state.unread}-{state.unseen}-{state.max_level}-{cursor}"'
    response = get_conditional_response(request, etag=etag)
    if response is None:
        body = {**count_to_dict(state), "latest": newest.latest or None, "cursor": str(cursor)}
        response = JsonResponse(body)
    response["ETag"] = etag
    response["X-Poll-Interval"] = str(pigeonhole_settings.POLL_INTERVAL)
    # Private: the answer is one user's; no-cache: always ask, the ETag keeps it cheap.
    response["Cache-Control"] = "private, no-cache"
    patch_vary_headers(response, ("Cookie",))
    return response
