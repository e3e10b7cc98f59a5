"""
The demo site as ``python3 dev.py demo`` serves it: uvicorn in its own process, SQLite,
the in-process broker. Alice sends bob a message; it reaches bob's open inbox live.
"""

import os
import socket
import subprocess
import sys
import time

import pytest
from playwright.sync_api import expect

from .conftest import PHONE, ROOT, UNBROKEN, horizontal_overflow, screenshot

pytestmark = pytest.mark.browser

EXAMPLE = ROOT / "example"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Set up the demo on a fresh database file and serve it; yield its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DEMO_DATABASE": str(tmp_path_factory.mktemp("demo") / "db.sqlite3"),
        "DEMO_MAIL_DIR": str(tmp_path_factory.mktemp("demo-mail")),
        "DEMO_SITE_URL": url,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the demo's own settings, not the suite's
    for command in (["migrate", "--noinput"], ["demo_setup", f"--url={url}/"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=EXAMPLE,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "demo.asgi:application", "--port", str(port),
         "--lifespan", "off", "--log-level", "warning"],
        cwd=EXAMPLE, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the demo server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def sign_in(chromium, url, username, viewport=None):
    context = chromium.new_context(
        base_url=url, viewport=viewport or {"width": 1100, "height": 800}
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"{username}-demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()
    return page, errors


def test_a_message_sent_in_the_demo_arrives_live_in_the_other_users_tab(chromium, demo):
    bob, bob_errors = sign_in(chromium, demo, "bob")
    alice, alice_errors = sign_in(chromium, demo, "alice")
    try:
        bob.goto("/messages/")
        badge = bob.locator(".navbar [data-pigeonhole-unread]")
        before = int(badge.inner_text())
        bob.evaluate("window.__same_page = true")
        # Give bob's stream a moment to open: it is the first thing the page's script does.
        bob.wait_for_timeout(500)

        alice.get_by_role("textbox", name="Message").fill("Review my pull request?")
        alice.get_by_label("Subject (optional)").fill("PR #42")
        alice.get_by_role("radio", name="One user").check()
        alice.get_by_role("combobox", name="User").select_option("bob")
        alice.get_by_role("button", name="Send").click()
        expect(alice.get_by_text("Sent to 1 recipient.")).to_be_visible()

        arrived = bob.locator("[data-pigeonhole-entry]", has_text="Review my pull request?")
        expect(arrived).to_be_visible()
        expect(arrived).to_contain_text("from alice")
        expect(badge).to_have_text(str(before + 1))
        assert bob.evaluate("window.__same_page === true")
        screenshot(bob, "demo-inbox-live")
        assert bob_errors == [] and alice_errors == []
    finally:
        bob.context.close()
        alice.context.close()


def send_to_myself(page, kind, text, *, subject="", url=""):
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_label("Subject (optional)").fill(subject)
    page.get_by_label("Link (optional)").fill(url)
    page.get_by_label("Kind").select_option(kind)
    page.get_by_role("radio", name="Myself").check()
    page.get_by_role("button", name="Send").click()


def test_the_demo_fits_a_phone(chromium, demo):
    """At 390 pixels the bar, the home page and the inbox stay within the screen."""
    long_url = "https://example.com/" + "/".join(["averyveryverylongpathsegment"] * 8)
    page, errors = sign_in(chromium, demo, "alice", viewport=PHONE)
    try:
        send_to_myself(
            page, "persistent_info", f"{UNBROKEN} {long_url}", subject=UNBROKEN, url=long_url
        )
        send_to_myself(page, "sticky_warning", f"Sticky{UNBROKEN}")
        expect(page.locator("[data-pigeonhole-alert]", has_text="Sticky")).to_be_visible()
        for path, name in (("/", "demo-phone-home"), ("/messages/", "demo-phone-inbox")):
            page.goto(path)
            expect(page.locator("[data-pigeonhole-alert]", has_text="Sticky")).to_be_visible()
            screenshot(page, name)
            assert horizontal_overflow(page) <= 0, path
            sign_out = page.get_by_role("button", name="Sign out")
            box = sign_out.bounding_box()
            assert box and box["x"] + box["width"] <= PHONE["width"], path
        assert errors == []
    finally:
        page.context.close()
