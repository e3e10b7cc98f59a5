"""A dropped stream comes back by itself, at a random moment, with its cursor."""

import pytest

import pigeonhole

from ..live.server import LiveServer
from .conftest import wait_for_stream

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Notes when the page opens a stream and when one fails, and makes "random" 0.5.
WATCH_STREAMS = """
window.__streams = [];
window.__errors = [];
Math.random = function () { return 0.5; };
(function () {
  var Real = window.EventSource;
  function Watched(url, options) {
    var source = new Real(url, options);
    window.__streams.push({url: url, at: performance.now()});
    source.addEventListener("error", function () { window.__errors.push(performance.now()); });
    return source;
  }
  Watched.prototype = Real.prototype;
  Watched.CONNECTING = Real.CONNECTING;
  Watched.OPEN = Real.OPEN;
  Watched.CLOSED = Real.CLOSED;
  window.EventSource = Watched;
})();
"""


@pytest.fixture
def live():
    """A server of this test's own, which it stops: as a deploy drops every stream."""
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    server = LiveServer()
    server.server.config.app = ASGIStaticFilesHandler(server.server.config.app)
    server.start()
    yield server
    server.stop()


def test_a_dropped_stream_is_reopened_after_a_random_delay_with_its_cursor(
    page, live, browser_user
):
    page.add_init_script(WATCH_STREAMS)
    page.goto("/messages/")
    wait_for_stream(page)
    pigeonhole.send(browser_user, "before the drop")
    page.wait_for_function("window.__pigeonhole.some(e => e.name === 'message')")
    live.stop()  # the server goes away, and every stream with it
    page.wait_for_function("window.__streams.length >= 2", timeout=15_000)
    streams = page.evaluate("window.__streams")
    dropped_at = page.evaluate("window.__errors[0]")
    assert "last_event_id=" in streams[1]["url"]
    # 0.1 + 0.9 * 0.5 of the 3 s spread: 1.65 s after the drop, never the same for all.
    assert streams[1]["at"] - dropped_at >= 1500
