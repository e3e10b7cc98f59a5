"""Tabs of one browser share one stream, and a tab that takes the lead misses nothing."""

import time

import pytest
from playwright.sync_api import expect

import pigeonhole

from .conftest import RECORD_EVENTS, wait_for_stream

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def row(page, text):
    return page.locator("[data-pigeonhole-entry]", has_text=text)


def badge(page):
    return page.locator(".pigeonhole-tabs [data-pigeonhole-unread]")


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_tabs_share_one_stream_and_a_new_leader_replays_the_gap(page, browser_user):
    context = page.context
    streams = []
    context.on("request", lambda request: "/stream/" in request.url and streams.append(request.url))
    context.add_init_script(RECORD_EVENTS)
    tabs = [page, context.new_page(), context.new_page()]
    for tab in tabs:
        tab.goto("/messages/")
    wait_for_stream(tabs[0])  # the first tab took the lock and opened the stream

    pigeonhole.send(browser_user, "To every tab")
    for tab in tabs:
        expect(row(tab, "To every tab")).to_be_visible()
        expect(badge(tab)).to_have_text("1")
    assert len(streams) == 1  # three tabs, one connection

    # The leader goes; a message sent at once reaches the others all the same: the tab
    # that takes the lead reconnects with the cursor the leader relayed, and replays it.
    tabs[0].close()
    pigeonhole.send(browser_user, "While the lead changed hands")
    for tab in tabs[1:]:
        expect(row(tab, "While the lead changed hands")).to_be_visible()
        expect(badge(tab)).to_have_text("2")
    wait_until(lambda: len(streams) == 2)
    assert "last_event_id=" in streams[1]
