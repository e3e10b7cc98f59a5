"""
``GET/PATCH preferences/``: the REST twin of the preferences page.

Preferences live in the database whatever the message store, so these run on
the database alone.
"""

import pytest
from django.urls import reverse

import pigeonhole
from pigeonhole.categories import get_preferences
from pigeonhole.models import Preference

pytestmark = pytest.mark.django_db

URL = reverse("pigeonhole_api:preferences")


@pytest.fixture(autouse=True)
def categories(settings):
    settings.PIGEONHOLE = {
        **settings.PIGEONHOLE,
        "SITE_URL": "https://example.com",
        "CATEGORIES": {
            "comments": {"label": "Comments", "email": True},
            "billing": {"label": "Billing", "email": True, "optional": False},
            "news": {"label": "News"},
        },
    }


def by_slug(document):
    return {item["slug"]: item for item in document["categories"]}


def test_get_lists_every_category_with_the_users_choices(api_client, user, other_user):
    Preference.objects.create(user=user, category="news", channel="digest", enabled=False)
    Preference.objects.create(user=other_user, category="news", channel="email", enabled=True)
    response = api_client.get(URL)
    assert response.status_code == 200
    categories = response.json()["categories"]
    assert [item["slug"] for item in categories] == ["comments", "billing", "news", ""]
    found = by_slug(response.json())
    assert found["comments"] == {
        "slug": "comments",
        "label": "Comments",
        "optional": True,
        "channels": {"inbox": True, "email": True, "digest": True},
    }
    assert found["billing"]["optional"] is False
    # Only this user's own choice shows; the other user's opt-in does not.
    assert found["news"]["channels"] == {"inbox": True, "email": False, "digest": False}
    assert found[""]["channels"] == {"email": True, "digest": True}  # no inbox switch


def test_patch_changes_only_what_it_names(api_client, user, other_user):
    body = {"categories": [{"slug": "comments", "channels": {"email": False}}]}
    response = api_client.patch(URL, body, format="json")
    assert response.status_code == 200, response.content
    assert by_slug(response.json())["comments"]["channels"] == {
        "inbox": True,
        "email": False,
        "digest": True,
    }
    prefs = get_preferences(user)
    assert prefs[("comments", "email")] is False
    assert prefs[("news", "email")] is False and prefs[("comments", "inbox")] is True
    assert not Preference.objects.filter(user=other_user).exists()


def test_patch_takes_back_what_get_gave(api_client, user):
    document = api_client.get(URL).json()
    for item in document["categories"]:
        if item["optional"]:
            item["channels"] = {channel: not on for channel, on in item["channels"].items()}
    response = api_client.patch(URL, document, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == document
    assert api_client.get(URL).json() == document


def test_the_choice_decides_delivery(api_client, user, django_capture_on_commit_callbacks):
    from django.core import mail

    settings_patch = {"categories": [{"slug": "comments", "channels": {"email": False}}]}
    assert api_client.patch(URL, settings_patch, format="json").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        pigeonhole.send(user, "Ann replied.", category="comments")
        pigeonhole.send(user, "Your invoice.", category="billing")
    assert [m.body.splitlines()[0] for m in mail.outbox] == ["Your invoice."]


@pytest.mark.parametrize(
    ("item", "field", "says"),
    [
        ({"slug": "nope", "channels": {}}, "slug", "No category 'nope'; this site has 'comments'"),
        ({"slug": "news", "channels": {"sms": True}}, "channels", "no channel sms"),
        ({"slug": "", "channels": {"inbox": False}}, "channels", "no channel inbox"),
        ({"slug": "billing", "channels": {"email": False}}, "channels", "fixed by the site"),
        ({"slug": "news", "channels": {"email": "maybe"}}, "channels", "valid boolean"),
    ],
)
def test_bad_input_is_refused_whole_and_named(api_client, user, item, field, says):
    good = {"slug": "comments", "channels": {"email": False}}
    response = api_client.patch(URL, {"categories": [good, item]}, format="json")
    assert response.status_code == 400
    errors = response.json()["categories"]
    assert says in str(errors["1"][field]), errors  # DRF keys list errors by index
    assert not Preference.objects.exists()  # the good half was not recorded either


def test_a_fixed_category_sent_back_unchanged_is_accepted(api_client, user):
    body = {"categories": [{"slug": "billing", "channels": {"email": True}}]}
    assert api_client.patch(URL, body, format="json").status_code == 200
    assert not Preference.objects.exists()


def test_repeated_categories_are_refused(api_client, user):
    item = {"slug": "news", "channels": {"email": True}}
    response = api_client.patch(URL, {"categories": [item, item]}, format="json")
    assert response.status_code == 400
    assert "repeated: 'news'" in str(response.json())


def test_needs_login_and_csrf(anon_client, user):
    assert anon_client.get(URL).status_code == 403
    anon_client.force_login(user)  # a session without the CSRF token
    body = {"categories": [{"slug": "news", "channels": {"email": True}}]}
    assert anon_client.patch(URL, body, format="json").status_code == 403
    assert not Preference.objects.exists()
