"""The script polling the count while the store is down: it waits as long as it is told."""

import pytest

from pigeonhole.exceptions import BackendUnavailable

from ..backends.redis_support import free_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The script as a page includes it, told to poll (no stream URL).
LOAD_POLLING_SCRIPT = """
var script = document.createElement("script");
script.src = "/static/pigeonhole/pigeonhole.js";
script.dataset.countUrl = "/messages/count/";
document.head.appendChild(script);
"""

COUNT_POLLS = """
performance.getEntriesByType("resource")
  .filter(function (entry) { return entry.name.indexOf("/messages/count/") !== -1; })
  .map(function (entry) { return entry.startTime; })
"""


def test_polling_waits_for_retry_after_when_the_store_is_down(page, settings, monkeypatch):
    # Nothing listens on the port: every read of the store fails at once.
    settings.PIGEONHOLE = {
        **settings.PIGEONHOLE,
        "BACKEND": "pigeonhole.backends.redis.RedisBackend",
        "OPTIONS": {"url": f"redis://127.0.0.1:{free_port()}/0", "socket_connect_timeout": 0.5},
    }
    # Short enough to see the second poll; the back-off without it starts at a second or less.
    monkeypatch.setattr(BackendUnavailable, "retry_after", 3)
    page.goto("/nothing/")
    page.evaluate(LOAD_POLLING_SCRIPT)
    page.wait_for_function(f"({COUNT_POLLS}).length >= 2", timeout=30_000)
    first, second = page.evaluate(COUNT_POLLS)[:2]
    assert second - first >= 3000
