"""Threads, saving and muting on the inbox page in a real browser, live and without JavaScript."""

import pytest
from playwright.sync_api import expect

import pigeonhole

from .conftest import new_page, wait_for_stream
from .test_inbox import mark_page, row, still_same_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def rows(page):
    return page.locator("[data-pigeonhole-entry]")


def test_a_threads_second_message_moves_its_row_to_the_top(page, browser_user, other_user):
    pigeonhole.send(browser_user, "Order 7 placed", thread="order-7", from_user=other_user)
    pigeonhole.send(browser_user, "Unrelated news")
    page.goto("/messages/?state=all")
    mark_page(page)
    wait_for_stream(page)
    expect(rows(page)).to_have_count(2)
    expect(rows(page).first).to_contain_text("Unrelated news")
    expect(row(page, "Order 7 placed").locator("[data-pigeonhole-field=count]")).to_be_hidden()

    pigeonhole.send(browser_user, "Order 7 shipped", thread="order-7", from_user=other_user)

    moved = row(page, "Order 7 shipped")
    expect(moved).to_be_visible()
    expect(rows(page)).to_have_count(2)  # the thread keeps one row
    expect(row(page, "Order 7 placed")).to_have_count(0)
    expect(rows(page).first).to_contain_text("Order 7 shipped")
    expect(moved.locator("[data-pigeonhole-field=count]")).to_have_text("2")
    expect(moved.locator("[data-pigeonhole-field=count]")).to_be_visible()
    expect(moved).to_have_attribute("data-pigeonhole-senders", str(other_user.pk))
    expect(page.locator('[data-pigeonhole-tab-count="all"]')).to_have_text("2")
    assert still_same_page(page)


def test_save_and_mute_without_reload(page, browser_user):
    pigeonhole.send(browser_user, "Order 8 placed", thread="order-8")
    page.goto("/messages/?state=all")
    mark_page(page)
    wait_for_stream(page)
    entry = row(page, "Order 8 placed")
    entry.get_by_role("button", name="Save", exact=True).click()
    expect(entry.get_by_role("button", name="Unsave")).to_be_visible()
    expect(entry.get_by_role("button", name="Save", exact=True)).to_be_hidden()
    entry.get_by_role("button", name="Mute thread").click()
    expect(entry.get_by_role("button", name="Unmute thread")).to_be_visible()
    assert still_same_page(page)
    stored = pigeonhole.inbox(browser_user, state="saved")
    assert [e.message for e in stored] == ["Order 8 placed"]
    assert pigeonhole.muted_threads(browser_user) == ["order-8"]

    # Changes made elsewhere reach the page through the stream.
    pigeonhole.unsave(browser_user, stored[0].id)
    expect(entry.get_by_role("button", name="Save", exact=True)).to_be_visible()
    pigeonhole.unmute(browser_user, "order-8")
    expect(entry.get_by_role("button", name="Mute thread")).to_be_visible()
    assert still_same_page(page)


def test_save_and_mute_without_javascript(chromium, live, browser_user):
    pigeonhole.send(browser_user, "Order 9 placed", thread="order-9")
    page = new_page(chromium, live, browser_user, javascript=False)
    try:
        page.goto("/messages/?state=all")
        mark_page(page)
        entry = row(page, "Order 9 placed")
        entry.get_by_role("button", name="Save", exact=True).click()
        page.wait_for_load_state()
        assert not still_same_page(page)
        expect(entry.get_by_role("button", name="Unsave")).to_be_visible()
        entry.get_by_role("button", name="Mute thread").click()
        page.wait_for_load_state()
        expect(entry.get_by_role("button", name="Unmute thread")).to_be_visible()
        assert [e.message for e in pigeonhole.inbox(browser_user, state="saved")] == [
            "Order 9 placed"
        ]
        assert pigeonhole.muted_threads(browser_user) == ["order-9"]
    finally:
        page.context.close()


def test_badges_count_unseen_messages_with_badge_unseen(page, browser_user, settings):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "BADGE": "unseen"}
    pigeonhole.send(browser_user, "shown on the page")
    page.goto("/messages/?state=all")  # marks it seen
    wait_for_stream(page)
    page.evaluate(
        "document.body.insertAdjacentHTML('beforeend',"
        " '<span id=\"nav-badge\" data-pigeonhole-unread hidden></span>')"
    )
    tab = page.locator(".pigeonhole-tabs [data-pigeonhole-unread]")
    nav = page.locator("#nav-badge")
    expect(tab).to_have_text("1")

    pigeonhole.send(browser_user, "not shown yet")
    expect(row(page, "not shown yet")).to_be_visible()
    expect(nav).to_have_text("1")  # unseen
    expect(tab).to_have_text("2")  # the Unread tab counts unread, whatever BADGE says

    pigeonhole.mark_seen(browser_user)
    expect(nav).to_be_hidden()
    expect(tab).to_have_text("2")
