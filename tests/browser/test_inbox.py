"""The inbox page in a real browser: live messages, actions without reloads, no-JS forms."""

import json
import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect

import pigeonhole

from ..backends.redis_support import delete_keys, redis_url, unique_prefix
from ..brokers.support import unique_channel
from .conftest import ROOT, new_page, screenshot, wait_for_stream

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = "<img src=x onerror=window.__pwned=1>"
READ = re.compile(r"\bpigeonhole-read\b")


def row(page, text):
    return page.locator("[data-pigeonhole-entry]", has_text=text)


def badge(page):
    return page.locator(".pigeonhole-tabs [data-pigeonhole-unread]")


def mark_page(page):
    """Leave a mark in the window: it survives only if the page never reloads."""
    page.evaluate("window.__same_page = true")


def still_same_page(page) -> bool:
    return page.evaluate("window.__same_page === true")


def tab_count(page, key):
    return page.locator(f'[data-pigeonhole-tab-count="{key}"]')


def test_sign_in_leads_to_the_inbox(chromium, live, browser_user):
    pigeonhole.send(browser_user, "Waiting for you", subject="Hello")
    page = new_page(chromium, live)
    try:
        page.goto("/admin/login/?next=/messages/")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("alice-password")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/messages/")
        expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
        expect(row(page, "Waiting for you")).to_be_visible()
        expect(badge(page)).to_have_text("1")
        assert page.errors == []
    finally:
        page.context.close()


@pytest.fixture
def shared_store(settings):
    """Redis backend and broker, which another process reaches as well as the server."""
    url, prefix = redis_url(), unique_prefix("browser")
    chosen = {
        "BACKEND": "pigeonhole.backends.redis.RedisBackend",
        "OPTIONS": {"url": url, "key_prefix": prefix},
        "BROKER": "pigeonhole.brokers.redis.RedisBroker",
        "BROKER_OPTIONS": {"url": url, "channel": unique_channel("browser")},
    }
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "STREAM_KEEPALIVE": 30, **chosen}
    yield chosen
    delete_keys(url, prefix)


def send_from_another_process(chosen, user, text):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.browser.send_message",
            json.dumps(chosen),
            str(user.pk),
            text,
        ],
        cwd=ROOT,
        check=True,
        timeout=60,
    )


def test_message_from_another_process_appears_without_reload(page, browser_user, shared_store):
    page.goto("/messages/")
    mark_page(page)
    wait_for_stream(page)
    expect(page.get_by_text("All caught up")).to_be_visible()
    expect(badge(page)).to_be_hidden()

    send_from_another_process(shared_store, browser_user, "Deploy finished")

    arrived = row(page, "Deploy finished")
    expect(arrived).to_be_visible()
    expect(arrived.locator("[data-pigeonhole-field=subject]")).to_have_text("From another process")
    expect(badge(page)).to_have_text("1")
    expect(page.get_by_text("All caught up")).to_be_hidden()
    assert still_same_page(page)
    screenshot(page, "inbox-live-message")

    # The clone's forms point at the new entry: marking it read reaches the store.
    arrived.get_by_role("button", name="Mark read").click()
    expect(arrived).to_have_class(READ)
    expect(badge(page)).to_be_hidden()
    assert pigeonhole.unread_count(browser_user) == 0
    assert still_same_page(page)


def test_mark_read_and_mark_all_read_update_page_and_database(page, browser_user):
    for text in ("first", "second", "third"):
        pigeonhole.send(browser_user, f"{text} message")
    page.goto("/messages/?state=all")
    mark_page(page)
    wait_for_stream(page)
    expect(badge(page)).to_have_text("3")
    screenshot(page, "inbox-all")

    second = row(page, "second message")
    second.get_by_role("button", name="Mark read").click()
    expect(second).to_have_class(READ)
    expect(badge(page)).to_have_text("2")
    assert pigeonhole.unread_count(browser_user) == 2

    # Arrives after the page loaded: "mark all as read" must leave it unread.
    pigeonhole.send(browser_user, "late message")
    expect(row(page, "late message")).to_be_visible()
    expect(badge(page)).to_have_text("3")
    page.get_by_role("button", name="Mark all as read").click()
    expect(badge(page)).to_have_text("1")
    for text in ("first", "second", "third"):
        expect(row(page, f"{text} message")).to_have_class(READ)
    expect(row(page, "late message")).not_to_have_class(READ)
    assert [str(entry) for entry in pigeonhole.inbox(browser_user)] == ["late message"]
    assert still_same_page(page)


def test_a_late_answer_to_an_action_does_not_undo_a_newer_live_count(page, browser_user):
    """
    An action's answer can reach the page after the stream's newer count: it must not win.

    The mark-read request reaches the server at once, but its answer (one unread) is held
    back until the stream has said two are unread (the read, then a message sent after it).
    """
    for text in ("first", "second"):
        pigeonhole.send(browser_user, f"{text} message")
    page.goto("/messages/?state=all")
    mark_page(page)
    wait_for_stream(page)
    expect(badge(page)).to_have_text("2")
    page.evaluate(
        "window.__answered = 0;"
        "document.addEventListener('pigeonhole:action', () => window.__answered++)"
    )
    held = []
    page.route("**/read/", lambda route: held.append((route, route.fetch())))
    second = row(page, "second message")
    second.get_by_role("button", name="Mark read").click()
    expect(badge(page)).to_have_text("1")  # from the stream: the answer is still held
    pigeonhole.send(browser_user, "late message")
    expect(row(page, "late message")).to_be_visible()
    expect(badge(page)).to_have_text("2")
    [(route, response)] = held
    route.fulfill(response=response)
    page.wait_for_function("window.__answered > 0")
    expect(badge(page)).to_have_text("2", timeout=1000)
    assert pigeonhole.unread_count(browser_user) == 2


def test_archive_tab_and_keyboard(page, browser_user):
    for text in ("alpha", "beta", "gamma"):
        pigeonhole.send(browser_user, text)
    page.goto("/messages/")
    mark_page(page)
    wait_for_stream(page)

    expect(page.get_by_text("Keyboard:")).to_be_visible()
    # j focuses the newest, j again the next; Shift+I marks it read, e archives it.
    page.keyboard.press("j")
    page.keyboard.press("j")
    beta = row(page, "beta")
    expect(beta).to_be_focused()
    page.keyboard.press("Shift+I")
    expect(beta).to_have_class(READ)
    page.keyboard.press("e")
    expect(beta).to_have_count(0)
    expect(row(page, "alpha")).to_be_focused()  # focus moves on to the neighbour
    page.keyboard.press("Shift+U")  # alpha was unread: nothing changes, nothing breaks

    # A button does the same.
    row(page, "gamma").get_by_role("button", name="Archive").click()
    expect(row(page, "gamma")).to_have_count(0)
    archived = {str(entry) for entry in pigeonhole.inbox(browser_user, state="archived")}
    assert archived == {"beta", "gamma"}
    assert still_same_page(page)
    expect(tab_count(page, "all")).to_have_text("1")  # the tabs count along
    expect(tab_count(page, "archived")).to_have_text("2")

    page.get_by_role("link", name="Archived").click()
    expect(row(page, "beta")).to_be_visible()
    expect(row(page, "gamma")).to_be_visible()
    screenshot(page, "inbox-archived")
    row(page, "beta").get_by_role("button", name="Move to inbox").click()
    expect(row(page, "beta")).to_have_count(0)
    assert [str(e) for e in pigeonhole.inbox(browser_user, state="archived")] == ["gamma"]
    expect(tab_count(page, "archived")).to_have_text("1")
    expect(tab_count(page, "all")).to_have_text("2")


def test_select_several_and_act_at_once(page, browser_user):
    for text in ("one", "two", "three"):
        pigeonhole.send(browser_user, text)
    page.goto("/messages/")
    wait_for_stream(page)
    row(page, "one").get_by_label("Select").check()
    row(page, "three").get_by_label("Select").check()
    page.locator("[data-pigeonhole-bulk]").get_by_role("button", name="Archive").click()
    expect(row(page, "one")).to_have_count(0)
    expect(row(page, "three")).to_have_count(0)
    expect(row(page, "two")).to_be_visible()
    assert [str(e) for e in pigeonhole.inbox(browser_user)] == ["two"]

    pigeonhole.send(browser_user, "four")  # arrives live; "select all" takes it too
    expect(row(page, "four")).to_be_visible()
    page.get_by_label("Select all").check()
    page.locator("[data-pigeonhole-bulk]").get_by_role("button", name="Mark read").click()
    expect(badge(page)).to_be_hidden()
    expect(row(page, "four")).to_have_class(READ)
    assert pigeonhole.unread_count(browser_user) == 0


def test_inbox_works_without_javascript(chromium, live, browser_user, other_user):
    for text in ("plain one", "plain two"):
        pigeonhole.send(browser_user, text)
    pigeonhole.send(browser_user, "Lunch?", from_user=other_user)
    page = new_page(chromium, live, browser_user, javascript=False)
    try:
        page.goto("/messages/?state=all")
        mark_page(page)  # evaluate runs even with page scripts off
        row(page, "plain one").get_by_role("button", name="Mark read").click()
        page.wait_for_load_state()
        assert not still_same_page(page)  # a real form post and redirect
        assert page.url.endswith("/messages/?state=all")  # back where the form was
        expect(row(page, "plain one")).to_have_class(READ)
        assert pigeonhole.unread_count(browser_user) == 2

        row(page, "plain two").get_by_label("Select").check()
        row(page, "plain one").get_by_label("Select").check()
        page.locator("[data-pigeonhole-bulk]").get_by_role("button", name="Archive").click()
        page.wait_for_load_state()
        expect(row(page, "plain two")).to_have_count(0)
        assert {str(e) for e in pigeonhole.inbox(browser_user, state="archived")} == {
            "plain one",
            "plain two",
        }

        lunch = row(page, "Lunch?")
        lunch.get_by_text("Reply", exact=True).click()
        lunch.get_by_label("Your reply").fill("Yes, at noon")
        lunch.get_by_role("button", name="Send reply").click()
        page.wait_for_load_state()
        assert [str(e) for e in pigeonhole.inbox(other_user)] == ["Yes, at noon"]
        expect(page.get_by_text("Keyboard:")).to_be_hidden()  # no script, no shortcuts
        expect(page.get_by_text("Select all")).to_be_hidden()
        screenshot(page, "inbox-no-javascript")
    finally:
        page.context.close()


def test_message_text_is_shown_as_text_and_never_run(page, browser_user):
    pigeonhole.send(browser_user, XSS, subject=XSS)
    page.goto("/messages/")
    wait_for_stream(page)
    pigeonhole.send(browser_user, XSS + " live")  # inserted by the script this time
    expect(row(page, "live")).to_be_visible()
    page.wait_for_timeout(300)  # time for an injected image to fail and fire onerror
    assert page.evaluate("typeof window.__pwned") == "undefined"
    texts = page.locator("[data-pigeonhole-field=message]").all_inner_texts()
    assert XSS in texts and f"{XSS} live" in texts
    assert page.locator("[data-pigeonhole-entry] img").count() == 0


def test_closing_alerts_marks_them_read_without_reload(page, browser_user, settings):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "READ_ON_DISPLAY": False}
    pigeonhole.send(browser_user, "close me", level=pigeonhole.PERSISTENT_INFO)
    pigeonhole.send(
        browser_user, "I go by myself", level=pigeonhole.PERSISTENT_INFO, close_timeout=1
    )
    page.goto("/messages/preferences/")  # a page framed by base.html, alerts included
    mark_page(page)
    alerts = page.locator("[data-pigeonhole-alert]")
    expect(alerts).to_have_count(2)
    alerts.filter(has_text="close me").get_by_role("button", name="Close and mark read").click()
    expect(alerts.filter(has_text="close me")).to_have_count(0)
    expect(alerts.filter(has_text="I go by myself")).to_have_count(0)  # after its second
    assert pigeonhole.unread_count(browser_user) == 0
    assert still_same_page(page)


# Links a browser follows to another host: it reads "\" as "/", drops leading spaces and
# control characters, and ignores tabs and newlines anywhere.
OTHER_HOST_URLS = [
    "//evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "\\/evil.example/",
    "/\\/evil.example/",
    " //evil.example/",
    "\x00/\\evil.example/",
    "\t/\\evil.example/",
    "/\t/evil.example/",
    "/\n\\evil.example/",
]


def test_safe_url_refuses_links_to_another_host(page, browser_user):
    page.goto("/messages/")
    page.wait_for_function("typeof window.pigeonhole === 'object'")
    verdicts = page.evaluate(
        """(urls) => urls.map((url) => ({
            host: new URL(url, location.href).hostname,
            safe: window.pigeonhole.safeUrl(url),
        }))""",
        OTHER_HOST_URLS,
    )
    # Each really is another host to the browser, and safeUrl refuses each.
    assert [v["host"] for v in verdicts] == ["evil.example"] * len(OTHER_HOST_URLS)
    assert [v["safe"] for v in verdicts] == [None] * len(OTHER_HOST_URLS)
    fine = ["/orders/42/", "/a\\b/", "https://example.com/", "HTTP://example.com/"]
    refused = [" javascript:alert(1)", "javascript:alert(1)", "data:text/html,x", ""]
    safe = page.evaluate("(urls) => urls.map(window.pigeonhole.safeUrl)", fine + refused)
    assert safe == fine + [None] * len(refused)
