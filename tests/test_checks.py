"""System checks: every bad setting fails ``manage.py check`` with an id and a hint."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

import pigeonhole
from pigeonhole.checks import check_email, check_settings, check_wiring


def ids(messages):
    return sorted(message.id for message in messages)


def test_default_settings_pass():
    assert check_settings() == []
    assert check_wiring() == []


@pytest.mark.parametrize(
    ("pigeonhole", "expected"),
    [
        ({"BACKEND": "pigeonhole.backends.nowhere.Backend"}, "pigeonhole.E001"),
        ({"STORE_LEVELS": [21, 22]}, "pigeonhole.E003"),
        ({"STORE_LEVELS": "21"}, "pigeonhole.E004"),
        ({"STICKY_LEVELS": [22.5]}, "pigeonhole.E005"),
        ({"EMAIL_LEVELS": None}, "pigeonhole.E006"),
        ({"ANONYMOUS": "ignore"}, "pigeonhole.E007"),
        ({"READ_ON_DISPLAY": "yes"}, "pigeonhole.E008"),
        ({"MAX_LENGTH": 0}, "pigeonhole.E009"),
        ({"RETENTION_DAYS": -1}, "pigeonhole.E009"),
        ({"POLL_INTERVAL": 0}, "pigeonhole.E009"),
        ({"STORE_LEVEL": [21]}, "pigeonhole.E011"),
        ({"STREAM_MAX_PER_PROCESS": 0}, "pigeonhole.E014"),
        ({"STREAM_MAX_PER_PROCESS": "10000"}, "pigeonhole.E014"),
        ({"OPTIONS": "redis://"}, "pigeonhole.E012"),
        ({"MAX_DATA_BYTES": 0}, "pigeonhole.E015"),
        ({"MAX_DATA_BYTES": "8k"}, "pigeonhole.E015"),
        ({"MAX_DATA_BYTES": None}, "pigeonhole.E015"),
        ({"MAX_DATA_DEPTH": 0}, "pigeonhole.E015"),
        ({"MAX_DATA_DEPTH": True}, "pigeonhole.E015"),
        ({"MAX_DATA_DEPTH": 101}, "pigeonhole.E015"),
    ],
)
def test_bad_setting_is_reported_with_a_hint(settings, pigeonhole, expected):
    settings.PIGEONHOLE = pigeonhole
    errors = check_settings()
    assert ids(errors) == [expected]
    assert all(error.hint or "must be" in error.msg for error in errors)


def test_settings_not_a_dict(settings):
    settings.PIGEONHOLE = ["STORE_LEVELS"]
    assert ids(check_settings()) == ["pigeonhole.E010"]


def test_message_storage_not_ours(settings):
    settings.MESSAGE_STORAGE = "django.contrib.messages.storage.fallback.FallbackStorage"
    [error] = check_wiring()
    assert error.id == "pigeonhole.E020"
    assert "pigeonhole.storage.PersistentStorage" in error.hint


def test_message_middleware_missing(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("MessageMiddleware")]
    assert ids(check_wiring()) == ["pigeonhole.E021"]


def test_session_middleware_missing_is_a_warning(settings):
    settings.MIDDLEWARE = [
        "django.contrib.messages.middleware.MessageMiddleware",
    ]
    assert ids(check_wiring()) == ["pigeonhole.W001"]


@pytest.mark.django_db  # Django 6 checks JSONField support against the database
def test_manage_py_check_fails_on_bad_settings(settings):
    settings.PIGEONHOLE = {"ANONYMOUS": "ignore"}
    with pytest.raises(SystemCheckError, match=r"pigeonhole\.E007"):
        call_command("check")


@pytest.mark.parametrize(
    ("pigeonhole", "text"),
    [
        ({"BROKER": "pigeonhole.brokers.nowhere.Broker"}, "cannot be imported"),
        ({"BROKER": "pigeonhole.brokers.redis.RedisBroker"}, "needs the address"),
        (
            {"BROKER": "pigeonhole.brokers.locmem.LocMemBroker", "BROKER_OPTIONS": {"x": 1}},
            "unknown option",
        ),
        (
            {
                "BROKER": "pigeonhole.brokers.postgres.PostgresBroker",
                "BROKER_OPTIONS": {"channel": ""},
            },
            "channel",
        ),
    ],
)
def test_bad_broker_is_reported(settings, pigeonhole, text):
    settings.PIGEONHOLE = pigeonhole
    [error] = check_settings()
    assert error.id == "pigeonhole.E002"
    assert text in error.msg


REDIS_BACKEND = "pigeonhole.backends.redis.RedisBackend"


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({}, "needs the address"),
        ({"url": "http://localhost/"}, "not a Redis URL"),
        ({"url": "redis://localhost/0", "key_prefix": "a{b}"}, "brace"),
        ({"sentinels": ["localhost:26379"]}, "service_name"),
    ],
)
def test_backend_refusing_its_options_is_reported(settings, options, text):
    settings.PIGEONHOLE = {"BACKEND": REDIS_BACKEND, "OPTIONS": options}
    [error] = check_settings()
    assert error.id == "pigeonhole.E001"
    assert text in error.msg


def test_backend_options_it_accepts_pass(settings):
    settings.PIGEONHOLE = {
        "BACKEND": REDIS_BACKEND,
        "OPTIONS": {"sentinels": ["localhost:26379"], "service_name": "mymaster"},
    }
    assert check_settings() == []


def test_broker_missing_its_library_names_the_pip_line(settings, monkeypatch):
    import sys

    # A None entry makes the import fail as if redis-py were not installed.
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.delitem(sys.modules, "pigeonhole.brokers.redis", raising=False)
    settings.PIGEONHOLE = {
        "BROKER": "pigeonhole.brokers.redis.RedisBroker",
        "BROKER_OPTIONS": {"url": "redis://localhost"},
    }
    [error] = check_settings()
    assert error.id == "pigeonhole.E002"
    assert 'pip install "django-pigeonhole[redis]"' in error.msg


def test_good_broker_passes(settings):
    settings.PIGEONHOLE = {
        "BROKER": "pigeonhole.brokers.redis.RedisBroker",
        "BROKER_OPTIONS": {"url": "redis://localhost:6379/0", "channel": "mysite"},
    }
    assert check_settings() == []


# W010: a site that sends no email needs no SITE_URL ---------------------------------


def test_site_without_email_needs_no_site_url(settings):
    settings.PIGEONHOLE = {"SITE_URL": None}
    assert check_email() == []


@pytest.mark.django_db  # Django 6 checks JSONField support against the database
def test_manage_py_check_is_quiet_on_a_site_without_email(settings, capsys):
    settings.PIGEONHOLE = {}
    call_command("check")
    captured = capsys.readouterr()
    assert "W010" not in captured.out + captured.err


@pytest.mark.parametrize(
    "email",
    [
        {"EMAIL_LEVELS": [pigeonhole.PERSISTENT_ERROR]},
        {"CATEGORIES": {"comments": {"label": "Comments", "email": True}}},
        {"CATEGORIES": {"": {"email": True}, "news": {"email": True, "digest": False}}},
    ],
)
def test_site_sending_email_without_site_url_is_warned(settings, email):
    settings.PIGEONHOLE = {"SITE_URL": None, **email}
    assert ids(check_email()) == ["pigeonhole.W010"]


def test_site_sending_email_with_site_url_passes(settings):
    settings.PIGEONHOLE = {
        "SITE_URL": "https://example.com",
        "EMAIL_LEVELS": [pigeonhole.PERSISTENT_ERROR],
    }
    assert check_email() == []


def test_categories_without_email_need_no_site_url(settings):
    settings.PIGEONHOLE = {"CATEGORIES": {"news": {"label": "News", "email": False}}}
    assert check_email() == []
