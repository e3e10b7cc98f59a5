"""
django-messages-extends' bundled alerts and ``close-alerts.js`` in a real browser.

The README's two lines, ``{% include "messages_extends/includes/alerts_bootstrap.html" %}``
and ``<script src="{% static "close-alerts.js" %}">``: clicking a close link marks the message read
with a POST that passes Django's CSRF check, and never sends the token to another site.
"""

import pytest
from playwright.sync_api import expect

import pigeonhole
from pigeonhole.compat import presets
from pigeonhole.compat.messages_extends import constants

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.compat.site_messages_extends"),
]

FORGED = """() => {
  const alert = document.createElement("div");
  alert.className = "alert forged";
  const link = document.createElement("a");
  link.className = "close";
  link.setAttribute("close-href", "https://evil.example/steal/");
  link.textContent = "x";
  alert.appendChild(link);
  document.body.prepend(alert);
}"""


@pytest.fixture(autouse=True)
def site(settings):
    settings.MESSAGE_STORAGE = "pigeonhole.compat.messages_extends.storages.FallbackStorage"
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, **presets.MESSAGES_EXTENDS}


def test_close_marks_read_with_the_csrf_token_and_posts_to_this_site_only(page, browser_user):
    pigeonhole.send(browser_user, "First", level=constants.WARNING_PERSISTENT)
    pigeonhole.send(browser_user, "Second", level=constants.INFO_PERSISTENT)
    requests = []
    page.on("request", lambda request: requests.append((request.method, request.url)))
    page.goto("/bundled/")
    alerts = page.locator("div.alert")
    expect(alerts).to_have_count(2)

    alerts.filter(has_text="First").locator("a.close").click()
    expect(alerts).to_have_count(1)
    assert [m.message for m in pigeonhole.inbox(browser_user)] == ["Second"]

    # A close link pointing elsewhere (injected markup, say) gets no request, so no token.
    page.evaluate(FORGED)
    page.locator("div.forged a.close").click()
    alerts.filter(has_text="Second").locator("a.close").click()
    expect(page.locator("div.alert", has_text="Second")).to_have_count(0)
    assert pigeonhole.unread_count(browser_user) == 0
    posts = [url for method, url in requests if method == "POST"]
    assert len(posts) == 2 and all("/messages/mark_read/" in url for url in posts)
    assert not any("evil.example" in url for _, url in requests)


def test_close_removes_a_sticky_message_for_the_session(page, browser_user):
    page.goto("/add/")  # the README's messages, a sticky one among them
    page.goto("/bundled/")
    sticky = page.locator("div.alert", has_text="only in this request")
    expect(sticky).to_have_count(1)
    sticky.locator("a.close").click()
    expect(sticky).to_have_count(0)
    page.reload()
    expect(page.locator("div.alert", has_text="Houston")).to_have_count(1)
    expect(page.locator("div.alert", has_text="only in this request")).to_have_count(0)
