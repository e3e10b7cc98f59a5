"""
The inbox page and its alerts on a phone (390 CSS pixels wide): nothing scrolls sideways.

Long words, subjects, links and sender names are what push a page wider than the screen,
so every message here is made of them, in the entries and in the alerts.
"""

import re

import pytest
from playwright.sync_api import expect

import pigeonhole

from .conftest import PHONE, UNBROKEN, horizontal_overflow, new_page, screenshot, wait_for_stream

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_URL = "https://example.com/" + "/".join(["averyveryverylongpathsegment"] * 8)


@pytest.fixture
def phone(chromium, live, browser_user):
    page = new_page(chromium, live, browser_user, viewport=PHONE)
    yield page
    assert page.errors == []
    page.context.close()


def send_long(user, **options):
    return pigeonhole.send(
        user, f"{UNBROKEN} and {LONG_URL}", subject=f"Subject{UNBROKEN}", url=LONG_URL, **options
    )


def test_inbox_page_fits_a_phone(phone, live, browser_user, django_user_model):
    sender = django_user_model.objects.create_user(username=f"sender{'n' * 120}")
    send_long(browser_user)
    send_long(browser_user, from_user=sender, level=pigeonhole.PERSISTENT_WARNING)
    phone.goto("/messages/")
    # A sticky alert on the inbox page itself, posted as a form would.
    token = phone.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    phone.request.post(
        f"{live.url}/add/sticky/",
        form={"messages": f"Sticky{UNBROKEN}", "csrfmiddlewaretoken": token},
        max_redirects=0,
    )
    phone.goto("/messages/?state=all")
    wait_for_stream(phone)
    expect(phone.locator("[data-pigeonhole-alert]")).to_have_count(1)
    send_long(browser_user, from_user=sender)  # inserted live by the script
    expect(phone.locator("[data-pigeonhole-entry]")).to_have_count(3)
    screenshot(phone, "phone-inbox")
    assert horizontal_overflow(phone) <= 0
    # The tabs and the buttons stay on the screen, not in a part one must scroll to.
    for locator in (
        phone.get_by_role("button", name="Mark all as read"),
        phone.locator("[data-pigeonhole-entry]").first.get_by_role("button").last,
    ):
        box = locator.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_alerts_fit_a_phone(phone, browser_user):
    send_long(browser_user)
    send_long(browser_user, level=pigeonhole.PERSISTENT_ERROR)
    phone.goto("/messages/preferences/")  # framed by base.html: stored messages as alerts
    expect(phone.locator("[data-pigeonhole-alert]")).to_have_count(2)
    screenshot(phone, "phone-alerts")
    assert horizontal_overflow(phone) <= 0
    alert = phone.locator("[data-pigeonhole-alert]").first
    assert re.search(r"Unbrokenx+", alert.inner_text())
    # Broken into lines across the alert's width, not squeezed into a column of letters.
    text = alert.locator(".pigeonhole-text").bounding_box()
    assert text and text["width"] > PHONE["width"] / 2
