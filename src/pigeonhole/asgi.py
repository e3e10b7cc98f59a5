"""
An ASGI entry point that answers the live stream route itself, without a thread per request.

Django's ASGI handler runs a request's synchronous middleware (sessions,
authentication, CSRF, messages...) on a thread of the request's own, and the
event loop waits for that thread to start and to finish; when a deploy drops
every stream at once, thousands of streams come back within seconds and each
pays for its threads. Wrapped around the site's application::

    application = live_streams(get_asgi_application())

a ``GET`` of the URL that resolves to ``pigeonhole.views.stream`` is served on
the event loop: the session comes from its cookie, the user is loaded with the
other streams' users and store reads and verified as
``django.contrib.auth.get_user`` verifies it (the session's auth hash
included, as ``AuthenticationMiddleware`` does; see ``pigeonhole.auth``), and
the same view answers. Everything else goes to ``application``.

What the stream then skips: the site's middleware and URLconf overrides
(``request.urlconf``), and the ``request_started``/``request_finished``
signals. A site whose streams need those (another way of authenticating, a
middleware that must see every request) keeps the plain view: it does not wrap.
"""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import import_module
from typing import Any, cast

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import Resolver404, resolve

__all__ = ["LiveStreams", "live_streams"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Application = Callable[[Scope, Receive, Send], Awaitable[None]]


def live_streams(application: Application) -> LiveStreams:
    """Return ``application`` with the live stream route answered on the event loop."""
    return LiveStreams(application)


class LiveStreams:
    """
    An ASGI application: the stream route served here, every other request by ``application``.

    ``stream_view`` is the view whose route is served; a site that routes the
    stream to a view of its own (a wrapped one) is not intercepted.
    """

    def __init__(self, application: Application) -> None:
        self.application = application

    @functools.cached_property
    def stream_view(self) -> Callable[..., Any]:
        # Imported on first use: the views need Django set up, which the site's
        # get_asgi_application() does before it wraps.
        from .views.actions import stream

        return stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and _is_stream_path(_path_info(scope), self.stream_view)
        ):
            await serve_stream(scope, receive, send, self.stream_view)
        else:
            await self.application(scope, receive, send)


def _path_info(scope: Scope) -> str:
    # As ASGIRequest works it out: the path below the application's mount point.
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path.removeprefix(root) if root and path.startswith(root) else path


@functools.lru_cache(maxsize=1024)
def _is_stream_path(path_info: str, view: Callable[..., Any]) -> bool:
    # Resolved once per path, with the site's ROOT_URLCONF; at most 1024 paths
    # are remembered, so requests for made-up paths cannot grow the cache.
    try:
        return resolve(path_info).func is view
    except Resolver404:
        return False


@functools.cache
def _session_middleware() -> SessionMiddleware:
    # Only its process_response(): Django's own session cookie handling, for a
    # session that get_user() flushed or moved to a new key.
    return SessionMiddleware(lambda request: HttpResponse())


async def serve_stream(
    scope: Scope, receive: Receive, send: Send, view: Callable[..., Awaitable[HttpResponseBase]]
) -> None:
    """Answer one stream request with ``view``, writing its frames straight to ``send``."""
    try:
        request = ASGIRequest(scope, io.BytesIO())
        request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware checks it
    except (UnicodeDecodeError, DisallowedHost):
        await _write(HttpResponseBadRequest(), send, receive)
        return
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
    response = await view(request)
    # Typed for HttpResponse, and as in Django's own chain, given any response (a stream).
    response = _session_middleware().process_response(request, cast(HttpResponse, response))
    await _write(response, send, receive)


async def _write(response: HttpResponseBase, send: Send, receive: Receive) -> None:
    """
    Send ``response`` as Django's ASGI handler does, and stop when the client leaves.

    A stream's frames go out one write each. The client's disconnect is heard
    by a task that waits on ``receive``, which cancels the writing; the frames'
    own ``finally`` gives up the stream's subscription.
    """
    headers = [
        (name.encode("ascii"), str(value).encode("latin-1")) for name, value in response.items()
    ]
    headers += [
        (b"Set-Cookie", cookie.output(header="").encode("ascii").strip())
        for cookie in response.cookies.values()
    ]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    if not isinstance(response, StreamingHttpResponse):
        assert isinstance(response, HttpResponse)
        await send({"type": "http.response.body", "body": response.content})
        return
    writer = asyncio.current_task()
    assert writer is not None
    gone = asyncio.get_running_loop().create_task(_disconnected(receive, writer))
    frames = aiter(response)
    try:
        async for frame in frames:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body"})
    except asyncio.CancelledError:
        if not gone.done() or writer.cancelling() > 1:
            raise  # cancelled by the server, not by the client leaving
        writer.uncancel()
    finally:
        gone.cancel()
        if (aclose := getattr(frames, "aclose", None)) is not None:
            await aclose()
        # A client that left before the first frame: the frames never started,
        # so their own ``finally`` did not run.
        if (subscription := getattr(response, "subscription", None)) is not None:
            subscription.close()


async def _disconnected(receive: Receive, writer: asyncio.Task[Any]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    writer.cancel()
