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
        ({"BADGE": "unsen"}, "pigeonhole.E041"),
        ({"BADGE": None}, "pigeonhole.E041"),
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


#: A bad value for every setting a value rule covers, all at once.
EVERY_VALUE_WRONG = {
    "OPTIONS": "redis://",
    "BROKER_OPTIONS": [],
    "ANONYMOUS": "ignore",
    "READ_ON_DISPLAY": "yes",
    "ALLOW_DELETE_UNREAD": 1,
    "DELETE_READ": None,
    "MAX_LENGTH": 0,
    "RETENTION_DAYS": -1,
    "STREAM_MAX_PER_USER": True,
    "STREAM_REPLAY_LIMIT": "5",
    "STREAM_MAX_PER_PROCESS": 0,
    "MAX_DATA_BYTES": None,
    "MAX_DATA_DEPTH": 101,
    "STREAM_KEEPALIVE": 0,
    "POLL_INTERVAL": "30",
    "EMAIL_RETRIES": -1,
    "EMAIL_RETRY_DELAY": 1.5,
    "DIGEST_DELAY_MINUTES": False,
    "UNSUBSCRIBE_DAYS": 0,
}


def test_every_bad_value_is_reported_in_order_with_its_text(settings):
    settings.PIGEONHOLE = EVERY_VALUE_WRONG
    reported = [(e.id, e.msg, e.hint) for e in [*check_settings(), *check_email()]]
    assert reported == [
        ("pigeonhole.E012", "PIGEONHOLE['OPTIONS'] must be a dict.", "For example: {}"),
        ("pigeonhole.E013", "PIGEONHOLE['BROKER_OPTIONS'] must be a dict.", "For example: {}"),
        (
            "pigeonhole.E007",
            "PIGEONHOLE['ANONYMOUS'] must be 'flash' or 'raise', got 'ignore'.",
            "'flash' shows the message once; 'raise' raises PersistenceUnavailable.",
        ),
        (
            "pigeonhole.E008",
            "PIGEONHOLE['READ_ON_DISPLAY'] must be True or False, got 'yes'.",
            None,
        ),
        (
            "pigeonhole.E008",
            "PIGEONHOLE['ALLOW_DELETE_UNREAD'] must be True or False, got 1.",
            None,
        ),
        ("pigeonhole.E008", "PIGEONHOLE['DELETE_READ'] must be True or False, got None.", None),
        ("pigeonhole.E009", "PIGEONHOLE['MAX_LENGTH'] must be a positive integer, got 0.", None),
        (
            "pigeonhole.E009",
            "PIGEONHOLE['RETENTION_DAYS'] must be a positive integer or None, got -1.",
            None,
        ),
        (
            "pigeonhole.E009",
            "PIGEONHOLE['STREAM_MAX_PER_USER'] must be a positive integer, got True.",
            None,
        ),
        (
            "pigeonhole.E009",
            "PIGEONHOLE['STREAM_REPLAY_LIMIT'] must be a positive integer, got '5'.",
            None,
        ),
        (
            "pigeonhole.E014",
            "PIGEONHOLE['STREAM_MAX_PER_PROCESS'] must be a positive integer or None, got 0.",
            "For example 10000: the open streams one server process may hold. "
            "None leaves only the process's open-file limit.",
        ),
        (
            "pigeonhole.E015",
            "PIGEONHOLE['MAX_DATA_BYTES'] must be a positive integer, got None.",
            "For example 8192: bytes of data, as compact JSON in UTF-8.",
        ),
        (
            "pigeonhole.E015",
            "PIGEONHOLE['MAX_DATA_DEPTH'] must be a positive integer of at most 100, got 101.",
            "For example 20: levels of nesting, at most 100.",
        ),
        (
            "pigeonhole.E009",
            "PIGEONHOLE['STREAM_KEEPALIVE'] must be a positive number of seconds, got 0.",
            None,
        ),
        (
            "pigeonhole.E009",
            "PIGEONHOLE['POLL_INTERVAL'] must be a positive number of seconds, got '30'.",
            None,
        ),
        (
            "pigeonhole.E033",
            "PIGEONHOLE['EMAIL_RETRIES'] must be an integer of at least 0, got -1.",
            None,
        ),
        (
            "pigeonhole.E033",
            "PIGEONHOLE['EMAIL_RETRY_DELAY'] must be an integer of at least 0, got 1.5.",
            None,
        ),
        (
            "pigeonhole.E033",
            "PIGEONHOLE['DIGEST_DELAY_MINUTES'] must be an integer of at least 0, got False.",
            None,
        ),
        (
            "pigeonhole.E033",
            "PIGEONHOLE['UNSUBSCRIBE_DAYS'] must be an integer of at least 1, got 0.",
            None,
        ),
    ]


def test_each_value_rule_reports_its_own_setting_alone(settings):
    """Every row of the table is one setting's check: a wrong value there fails it alone."""
    from pigeonhole.checks import VALUE_RULES

    assert len({rule.key for rule in VALUE_RULES}) == len(VALUE_RULES)
    for rule in VALUE_RULES:
        settings.PIGEONHOLE = {rule.key: object()}
        [error] = [*check_settings(), *check_email()]
        assert (error.id, rule.key in error.msg) == (rule.id, True)
