"""``{% load pigeonhole %}`` and the context processor, rendered for real requests."""

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.storage import default_storage
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpResponse
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

import pigeonhole
from pigeonhole.context_processors import unread_count
from pigeonhole.templatetags.pigeonhole import ago, pigeonhole_color

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store")]


def make_request(user, path="/page/?tab=1"):
    request = RequestFactory().get(path)
    request.user = user
    request.session = SessionStore()
    request._messages = default_storage(request)
    return request


def render(source, request, **extra):
    return Template("{% load pigeonhole %}" + source).render(
        Context({"request": request, "user": request.user, **extra})
    )


def finish(request):
    """Run the end of the request, where displayed persistent messages are marked read."""
    request._messages.update(HttpResponse())


def test_unread_count_tag(user, other_user):
    pigeonhole.send(user, "one")
    pigeonhole.send(user, "two")
    pigeonhole.send(other_user, "not alice's")
    request = make_request(user)
    assert render("{% pigeonhole_unread_count %}", request) == "2"
    assert render("{% pigeonhole_unread_count as n %}[{{ n }}]", request) == "[2]"
    assert render("{% pigeonhole_unread_count other %}", request, other=other_user) == "1"


@pytest.mark.db_only  # the Redis store keeps no seen state yet: every unread entry is unseen
def test_badges_count_unseen_messages_with_badge_unseen(user, settings):
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "BADGE": "unseen"}
    pigeonhole.send(user, "one")
    pigeonhole.mark_seen(user)
    pigeonhole.send(user, "two")
    request = make_request(user)
    assert render("{% pigeonhole_unread_count %}", request) == "1"
    assert str(unread_count(make_request(user))["pigeonhole_unread_count"]) == "1"
    page = render("{% pigeonhole_scripts %}", request)
    config = re.search(r'id="pigeonhole-config" type="application/json">(.*?)</script>', page)
    assert json.loads(config[1])["badge"] == "unseen"
    settings.PIGEONHOLE = {**settings.PIGEONHOLE, "BADGE": "unread"}
    assert render("{% pigeonhole_unread_count %}", make_request(user)) == "2"


def test_unread_count_tag_is_zero_for_anonymous():
    assert render("{% pigeonhole_unread_count %}", make_request(AnonymousUser())) == "0"


@pytest.mark.db_only
def test_context_processor_queries_only_when_used(user, django_assert_num_queries):
    pigeonhole.send(user, "one")
    request = make_request(user)
    with django_assert_num_queries(0):
        context = unread_count(request)
        Template("nothing here").render(Context(context))
    with django_assert_num_queries(1):
        text = Template(
            "{{ pigeonhole_unread_count }}{% if pigeonhole_unread_count %}!{% endif %}"
        ).render(Context(context))
    assert text == "1!"


def test_context_processor_for_anonymous_says_zero():
    context = unread_count(make_request(AnonymousUser()))
    assert str(context["pigeonhole_unread_count"]) == "0"
    assert not context["pigeonhole_unread_count"]


# Alerts --------------------------------------------------------------------


def test_messages_tag_renders_each_kind_with_its_close_button(user):
    request = make_request(user)
    pigeonhole.add_message(request, pigeonhole.PERSISTENT_WARNING, "stored", subject="Heads up")
    pigeonhole.add_message(request, pigeonhole.STICKY_INFO, "sticky one")
    pigeonhole.add_message(request, pigeonhole.INFO, "flash one")
    stored = pigeonhole.inbox(user)[0]
    html = render("{% pigeonhole_messages %}", request)
    sticky = request._messages.get_sticky()[0]
    assert f'action="/messages/{stored.id}/read/"' in html
    assert f'action="/messages/sticky/{sticky.id}/close/"' in html
    assert "data-pigeonhole-dismiss" in html
    assert "alert-warning" in html and "Heads up" in html
    assert html.count("data-pigeonhole-alert") == 3
    assert 'name="next" value="/page/?tab=1"' in html
    finish(request)
    assert pigeonhole.unread_count(user) == 0  # displayed, so read (READ_ON_DISPLAY)


def test_messages_tag_without_persistent_leaves_them_unread(user):
    request = make_request(user)
    pigeonhole.add_message(request, pigeonhole.PERSISTENT_INFO, "stored")
    pigeonhole.add_message(request, pigeonhole.INFO, "flash one")
    html = render("{% pigeonhole_messages persistent=False %}", request)
    assert "flash one" in html and "stored" not in html
    finish(request)
    assert pigeonhole.unread_count(user) == 1
    assert list(make_request(user)._messages.get_nonpersistent()) == []


def test_messages_tag_marks_close_timeout_and_escapes(user):
    request = make_request(user)
    pigeonhole.add_message(
        request, pigeonhole.PERSISTENT_INFO, "<script>alert(1)</script>", close_timeout=5
    )
    html = render("{% pigeonhole_messages %}", request)
    assert 'data-pigeonhole-close-timeout="5"' in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_messages_tag_renders_nothing_without_messages(user):
    assert render("{% pigeonhole_messages %}", make_request(user)).strip() == ""


# The short inbox -----------------------------------------------------------


def test_inbox_tag_lists_the_newest_unread_with_sender(user, other_user):
    for n in range(4):
        pigeonhole.send(user, f"note {n}", from_user=other_user)
    pigeonhole.send(other_user, "bob's own")
    html = render("{% pigeonhole_inbox limit=3 %}", make_request(user))
    assert re.findall(r"note \d", html) == ["note 3", "note 2", "note 1"]
    assert "bob's own" not in html
    assert other_user.username in html
    assert 'href="/messages/"' in html
    assert "data-pigeonhole-messages" in html


def test_inbox_tag_empty_state(user):
    assert "No new messages." in render("{% pigeonhole_inbox %}", make_request(user))


# The script ----------------------------------------------------------------


def test_scripts_tag_gives_the_urls_and_no_inline_code(user):
    html = render("{% pigeonhole_scripts %}", make_request(user))
    assert 'data-stream-url="/messages/stream/"' in html
    assert 'data-count-url="/messages/count/"' in html
    assert 'data-read-url="/messages/0/read/"' in html
    tags = re.findall(r"<script[^>]*>", html)
    assert len(tags) == 2
    # CSP without 'unsafe-inline': one external script, one JSON data block.
    assert all('src="' in tag or 'type="application/json"' in tag for tag in tags)
    config = json.loads(
        re.search(r'id="pigeonhole-config"[^>]*>(.*?)</script>', html, re.S).group(1)
    )
    assert config["strings"]["just_now"] == "just now"
    assert config["colors"]["error"] == "danger"


def test_scripts_tag_renders_nothing_for_anonymous():
    assert render("{% pigeonhole_scripts %}", make_request(AnonymousUser())).strip() == ""


def test_styles_tag_links_the_stylesheet():
    assert 'href="/static/pigeonhole/pigeonhole.css"' in render(
        "{% pigeonhole_styles %}", make_request(AnonymousUser())
    )


# Plain functions -----------------------------------------------------------


def test_ago_says_just_now_then_how_long():
    now = timezone.now()
    assert ago(now - timedelta(seconds=20), now) == "just now"
    assert ago(now - timedelta(hours=2, minutes=5), now) == "2\xa0hours ago"
    assert ago(None) == ""


@pytest.mark.parametrize(
    ("tag", "color"),
    [("error", "danger"), ("info", "info"), ("debug", "secondary"), ("", "secondary")],
)
def test_bootstrap_colour_for_each_level_tag(tag, color):
    assert pigeonhole_color(tag) == color
