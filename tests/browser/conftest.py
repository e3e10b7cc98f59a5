"""
Real headless Chromium (Debian's ``chromium``) driven by Playwright, against uvicorn.

The browser is the system's: Playwright's own browser download is never used, so
``CHROMIUM`` (default ``/usr/bin/chromium``) must exist. Without it, or without
Playwright, the tests skip with the install line; under ``CI=true`` they fail,
as a missing database backend does. They run on the SQLite run only: what they
check lives in the page and the script, which no database changes, and each
browser test costs seconds.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.db import connection

from ..live.server import LiveServer, session_cookies

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"

# Quiet and closed: no updates, no sync, no network but the page's own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason}; under CI the browser tests must run.")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium(django_db_setup, django_db_blocker) -> Iterator[object]:
    """
    Start Chromium once per module, after the test database exists.

    Playwright's sync API keeps an event loop running in this thread while it is open,
    which Django takes for an async context; so it is opened after the database setup
    and closed with the module, before any other test runs.
    """
    if not shutil.which(CHROMIUM):
        _unavailable(f"no Chromium at {CHROMIUM} (install it: apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("Playwright is missing (pip install playwright; not `playwright install`)")
    # expect() waits 5 s by default: too little for a dropped stream reopened after up
    # to 3 s of jitter on a loaded 2-core machine. A passing check still returns at once.
    expect.set_options(timeout=15_000)
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # until the loop is gone again
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        if before is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(autouse=True)
def sqlite_run_only():
    if connection.vendor != "sqlite":
        pytest.skip("browser tests run on the SQLite run only, to keep CI short")


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    """The live server, serving static files as well: the page needs pigeonhole.js."""
    server = LiveServer()
    server.server.config.app = ASGIStaticFilesHandler(server.server.config.app)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def browser_user(transactional_db, django_user_model):
    return django_user_model.objects.create_user(
        username="alice", email="alice@example.com", password="alice-password", is_staff=True
    )


# Records the client's DOM events, so a test can wait for the stream to be open.
RECORD_EVENTS = """
window.__pigeonhole = [];
["message", "count", "change", "action"].forEach(function (name) {
  document.addEventListener("pigeonhole:" + name, function (e) {
    window.__pigeonhole.push({name: name, detail: e.detail});
  });
});
"""


#: A phone held upright: an iPhone 12 to 15's CSS viewport.
PHONE = {"width": 390, "height": 844}

#: Text that cannot wrap at a space: a layout must break it, or the page scrolls sideways.
UNBROKEN = "Unbroken" + "x" * 160


def new_page(
    chromium,
    live: LiveServer,
    user=None,
    *,
    javascript: bool = True,
    viewport: dict[str, int] | None = None,
):
    context = chromium.new_context(
        base_url=live.url,
        java_script_enabled=javascript,
        viewport=viewport or {"width": 1100, "height": 800},
    )
    context.set_default_timeout(10_000)
    if user is not None:
        cookies = session_cookies(user)
        context.add_cookies(
            [{"name": name, "value": value, "url": live.url} for name, value in cookies.items()]
        )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    if javascript:
        page.add_init_script(RECORD_EVENTS)
    return page


@pytest.fixture
def page(chromium, live, browser_user):
    page = new_page(chromium, live, browser_user)
    yield page
    assert page.errors == []  # no script error on any page a test visited
    page.context.close()


def screenshot(page, name: str) -> Path:
    """Save a screenshot where CI collects its artefacts."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def horizontal_overflow(page) -> int:
    """Return how many CSS pixels the page is wider than the window (0: no sideways scroll)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def wait_for_stream(page) -> None:
    """Wait for the first event of the stream: the client then hears everything after it."""
    page.wait_for_function("window.__pigeonhole.some(e => e.name === 'count')")
