"""
The asgiref internals a stream relies on to let go of its request's thread.

``pigeonhole.live.request_thread_executors()`` is the one place that reaches
them; these tests fail on an asgiref release that renames or reshapes them.
"""

from collections.abc import MutableMapping
from contextvars import ContextVar

import httpx
from asgiref.sync import SyncToAsync, sync_to_async
from django.http import JsonResponse
from django.urls import path

from pigeonhole import live as pigeonhole_live


async def probe(request):
    """Report what ``request_thread_executors()`` finds in this request, then release."""
    await sync_to_async(lambda: None)()  # as the middleware did: the request's thread exists
    found = pigeonhole_live.request_thread_executors()
    report = {"found": found is not None}
    if found is not None:
        executors, current = found
        report["has_executor"] = current in executors
        await pigeonhole_live.release_request_thread()
        report["released"] = current not in executors
    return JsonResponse(report)


urlpatterns = [path("asgiref-probe/", probe)]


def test_the_asgiref_attributes_exist():
    assert isinstance(SyncToAsync.thread_sensitive_context, ContextVar)
    assert isinstance(SyncToAsync.context_to_thread_executor, MutableMapping)


def test_outside_a_request_nothing_is_found():
    assert pigeonhole_live.request_thread_executors() is None


def test_inside_an_asgi_request_the_requests_thread_is_found_and_released(live, settings):
    settings.ROOT_URLCONF = __name__
    response = httpx.get(f"{live.url}/asgiref-probe/", timeout=30)
    assert response.status_code == 200
    assert response.json() == {"found": True, "has_executor": True, "released": True}
