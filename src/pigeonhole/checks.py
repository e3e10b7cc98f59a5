"""
System checks: bad settings fail ``manage.py check`` with an id and a hint.

Ids are stable (``pigeonhole.E001``...) so projects can silence one knowingly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from .conf import DATA_DEPTH_CEILING, DEFAULTS, pigeonhole_settings

__all__ = ["check_cache", "check_email", "check_settings", "check_wiring"]

_STORAGE = "pigeonhole.storage.PersistentStorage"


def _import_error(key: str, path: Any, ident: str, example: str) -> list[Error]:
    try:
        import_string(path)
    except ImportError as exc:
        return [
            Error(
                f"PIGEONHOLE['{key}'] = {path!r} cannot be imported: {exc}",
                hint=f"Use a dotted path to a class, such as {example!r}.",
                id=ident,
            )
        ]
    except Exception as exc:  # an ImproperlyConfigured raised by the module, say
        return [Error(f"PIGEONHOLE['{key}'] = {path!r} failed to import: {exc}", id=ident)]
    return []


def _built_errors(raw: dict[str, object], key: str, ident: str, example: str) -> list[Error]:
    """
    Check that the class ``PIGEONHOLE[key]`` names imports and accepts its options.

    Building a backend or a broker connects to nothing, so the check is safe to
    run anywhere: a bad Redis URL or Sentinel option, or a missing redis-py or
    psycopg (with its ``pip install`` line), is reported here rather than on the
    first request.
    """
    path = getattr(pigeonhole_settings, key)
    options_key = "OPTIONS" if key == "BACKEND" else f"{key}_OPTIONS"
    errors = _import_error(key, path, ident, example)
    options = raw.get(options_key, {})
    if errors or not isinstance(options, dict):
        return errors  # a non-dict OPTIONS is E012's (E013's) to report
    try:
        import_string(path)(**options)
    except Exception as exc:
        return [
            Error(
                f"PIGEONHOLE['{key}'] = {path!r} refused its {options_key}: {exc}",
                hint=f"Fix PIGEONHOLE['{options_key}']; the documentation lists the options.",
                id=ident,
            )
        ]
    return []


def _levels(key: str, ident: str) -> tuple[set[int] | None, list[Error]]:
    value = pigeonhole_settings.user_settings.get(key, DEFAULTS[key])
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        bad = True
    else:
        value = list(value)
        bad = any(isinstance(v, bool) or not isinstance(v, int) for v in value)
    if bad:
        return None, [
            Error(
                f"PIGEONHOLE['{key}'] must be a list of integer levels, got {value!r}.",
                hint=f"For example: '{key}': [pigeonhole.PERSISTENT_INFO, pigeonhole.ERROR].",
                id=ident,
            )
        ]
    return set(value), []


# Value predicates for the rules below: True for a valid value. A bool is an int
# to Python, never a count or a number of seconds to a setting.
def _at_least(minimum: int) -> Callable[[object], bool]:
    def valid(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= minimum

    return valid


_positive_int = _at_least(1)


def _positive_int_or_none(value: object) -> bool:
    return value is None or _positive_int(value)


def _positive_seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _data_depth(value: object) -> bool:
    return _positive_int(value) and isinstance(value, int) and value <= DATA_DEPTH_CEILING


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _is_dict(value: object) -> bool:
    return isinstance(value, dict)


@dataclass(frozen=True)
class Rule:
    """
    What one setting's value must be, and the error raised when it is not.

    ``expected`` completes the message "PIGEONHOLE['KEY'] must be ..., got <value>.";
    ``message`` replaces the whole sentence where the value would say nothing new.
    """

    key: str
    valid: Callable[[object], bool]
    expected: str
    id: str
    hint: str | None = None
    message: str = "PIGEONHOLE['{key}'] must be {expected}, got {value!r}."

    def check(self, raw: dict[str, object]) -> list[Error]:
        value = raw.get(self.key, DEFAULTS[self.key])
        if self.valid(value):
            return []
        text = self.message.format(key=self.key, expected=self.expected, value=value)
        return [Error(text, hint=self.hint, id=self.id)]


_DICT = "PIGEONHOLE['{key}'] must be {expected}."
_BOOL = "True or False"
_POSITIVE = "a positive integer"
_SECONDS = "a positive number of seconds"

#: One row per setting whose value alone decides whether it is valid, in the order
#: ``check_settings`` reports them; ``check_email`` reports the rows of ``EMAIL_RULES``.
VALUE_RULES: tuple[Rule, ...] = (
    Rule("OPTIONS", _is_dict, "a dict", "pigeonhole.E012", "For example: {}", _DICT),
    Rule("BROKER_OPTIONS", _is_dict, "a dict", "pigeonhole.E013", "For example: {}", _DICT),
    Rule(
        "ANONYMOUS",
        lambda value: value in ("flash", "raise"),
        "'flash' or 'raise'",
        "pigeonhole.E007",
        "'flash' shows the message once; 'raise' raises PersistenceUnavailable.",
    ),
    Rule("READ_ON_DISPLAY", _is_bool, _BOOL, "pigeonhole.E008"),
    Rule("ALLOW_DELETE_UNREAD", _is_bool, _BOOL, "pigeonhole.E008"),
    Rule("DELETE_READ", _is_bool, _BOOL, "pigeonhole.E008"),
    Rule("MAX_LENGTH", _positive_int, _POSITIVE, "pigeonhole.E009"),
    Rule("RETENTION_DAYS", _positive_int_or_none, f"{_POSITIVE} or None", "pigeonhole.E009"),
    Rule("STREAM_MAX_PER_USER", _positive_int, _POSITIVE, "pigeonhole.E009"),
    Rule("STREAM_REPLAY_LIMIT", _positive_int, _POSITIVE, "pigeonhole.E009"),
    Rule(
        "STREAM_MAX_PER_PROCESS",
        _positive_int_or_none,
        f"{_POSITIVE} or None",
        "pigeonhole.E014",
        "For example 10000: the open streams one server process may hold. "
        "None leaves only the process's open-file limit.",
    ),
    Rule(
        "MAX_DATA_BYTES",
        _positive_int,
        _POSITIVE,
        "pigeonhole.E015",
        "For example 8192: bytes of data, as compact JSON in UTF-8.",
    ),
    Rule(
        "MAX_DATA_DEPTH",
        _data_depth,
        f"{_POSITIVE} of at most {DATA_DEPTH_CEILING}",
        "pigeonhole.E015",
        f"For example 20: levels of nesting, at most {DATA_DEPTH_CEILING}.",
    ),
    Rule("STREAM_KEEPALIVE", _positive_seconds, _SECONDS, "pigeonhole.E009"),
    Rule("POLL_INTERVAL", _positive_seconds, _SECONDS, "pigeonhole.E009"),
    Rule(
        "BADGE",
        lambda value: value in ("unread", "unseen"),
        "'unread' or 'unseen'",
        "pigeonhole.E041",
        "'unread' counts unread messages; 'unseen' those the user has not been shown yet.",
    ),
    Rule(
        "CATEGORIES",
        _is_dict,
        "a dict of slug: options",
        "pigeonhole.E030",
        "For example: {'comments': {'label': _('Comments'), 'email': True}}.",
    ),
    Rule("EMAIL_RETRIES", _at_least(0), "an integer of at least 0", "pigeonhole.E033"),
    Rule("EMAIL_RETRY_DELAY", _at_least(0), "an integer of at least 0", "pigeonhole.E033"),
    Rule("DIGEST_DELAY_MINUTES", _at_least(0), "an integer of at least 0", "pigeonhole.E033"),
    Rule("UNSUBSCRIBE_DAYS", _at_least(1), "an integer of at least 1", "pigeonhole.E033"),
)

_EMAIL_KEYS = (
    "CATEGORIES",
    "EMAIL_RETRIES",
    "EMAIL_RETRY_DELAY",
    "DIGEST_DELAY_MINUTES",
    "UNSUBSCRIBE_DAYS",
)
SETTINGS_RULES = tuple(rule for rule in VALUE_RULES if rule.key not in _EMAIL_KEYS)
EMAIL_RULES = tuple(rule for rule in VALUE_RULES if rule.key in _EMAIL_KEYS)


def _rule_errors(rules: Iterable[Rule], raw: dict[str, object]) -> list[Error]:
    return [error for rule in rules for error in rule.check(raw)]


def _unknown_key_errors(raw: dict[str, object]) -> list[Error]:
    unknown = sorted(set(raw) - set(DEFAULTS))
    if not unknown:
        return []
    return [
        Error(
            f"PIGEONHOLE has unknown key(s): {', '.join(unknown)}.",
            hint=f"Known keys: {', '.join(DEFAULTS)}.",
            id="pigeonhole.E011",
        )
    ]


def _level_errors() -> list[Error]:
    """Check the three level lists (E004 to E006), then that no level is stored and sticky."""
    store, errors = _levels("STORE_LEVELS", "pigeonhole.E004")
    sticky, errs = _levels("STICKY_LEVELS", "pigeonhole.E005")
    errors += errs
    errors += _levels("EMAIL_LEVELS", "pigeonhole.E006")[1]
    if store is not None and sticky is not None and store & sticky:
        both = ", ".join(str(level) for level in sorted(store & sticky))
        errors.append(
            Error(
                f"Level(s) {both} are in both STORE_LEVELS and STICKY_LEVELS.",
                hint="A message is either stored or sticky: remove the level from one list.",
                id="pigeonhole.E003",
            )
        )
    return errors


@register(Tags.compatibility)
def check_settings(app_configs: object = None, **kwargs: object) -> list[Error]:
    """Check the ``PIGEONHOLE`` dict itself: its keys, classes, levels, then each value."""
    raw = getattr(settings, "PIGEONHOLE", {})
    if not isinstance(raw, dict):
        return [
            Error(
                f"PIGEONHOLE must be a dict, got {type(raw).__name__}.",
                hint="PIGEONHOLE = {'STORE_LEVELS': [...], ...}",
                id="pigeonhole.E010",
            )
        ]
    return [
        *_unknown_key_errors(raw),
        *_built_errors(raw, "BACKEND", "pigeonhole.E001", "pigeonhole.backends.db.DatabaseBackend"),
        *_built_errors(raw, "BROKER", "pigeonhole.E002", "pigeonhole.brokers.locmem.LocMemBroker"),
        *_level_errors(),
        *_rule_errors(SETTINGS_RULES, raw),
    ]


#: The middleware the app relies on, by class name, and what to report without it.
_MIDDLEWARE = (
    (
        "MessageMiddleware",
        Error(
            "MessageMiddleware is not in MIDDLEWARE.",
            hint="Add 'django.contrib.messages.middleware.MessageMiddleware' to MIDDLEWARE.",
            id="pigeonhole.E021",
        ),
    ),
    (
        "SessionMiddleware",
        Warning(
            "SessionMiddleware is not in MIDDLEWARE; sticky messages need the session.",
            hint="Add 'django.contrib.sessions.middleware.SessionMiddleware' to MIDDLEWARE.",
            id="pigeonhole.W001",
        ),
    ),
)


def _is_ours(path: str) -> bool:
    from .storage import PersistentStorageMixin

    try:
        cls = import_string(path)
    except Exception:  # any import failure means it is not usable as ours
        return False
    return isinstance(cls, type) and issubclass(cls, PersistentStorageMixin)


@register(Tags.compatibility)
def check_wiring(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    """Check the project settings the app relies on."""
    errors: list[CheckMessage] = []
    storage = getattr(settings, "MESSAGE_STORAGE", "")
    if not _is_ours(storage):
        errors.append(
            Error(
                f"MESSAGE_STORAGE is {storage!r}, so messages.add_message() cannot store messages.",
                hint=f"Set MESSAGE_STORAGE = {_STORAGE!r} (or a storage class that uses "
                "pigeonhole.storage.PersistentStorageMixin).",
                id="pigeonhole.E020",
            )
        )
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    for name, missing in _MIDDLEWARE:
        if not any(_is_subclass(path, name) for path in middleware):
            errors.append(missing)
    from django.apps import apps

    for app in ("django.contrib.auth", "django.contrib.contenttypes"):
        if not apps.is_installed(app):
            errors.append(
                Error(
                    f"pigeonhole needs {app} in INSTALLED_APPS.",
                    hint=f"Add {app!r} to INSTALLED_APPS.",
                    id="pigeonhole.E022",
                )
            )
    return errors


def _is_subclass(path: str, name: str) -> bool:
    try:
        cls = import_string(path)
    except Exception:
        return False
    return isinstance(cls, type) and any(base.__name__ == name for base in cls.__mro__)


def _category_errors(raw: object) -> list[Error]:
    from django.utils.text import slugify

    from .categories import CATEGORY_KEYS, CHANNELS

    if not isinstance(raw, dict):
        return []  # E030, a row of EMAIL_RULES
    errors = []
    for slug, options in raw.items():
        if not isinstance(slug, str) or (slug and (len(slug) > 50 or slugify(slug) != slug)):
            errors.append(
                Error(
                    f"PIGEONHOLE['CATEGORIES'] key {slug!r} is not a slug.",
                    hint="Use lowercase letters, digits, hyphens and underscores, "
                    "at most 50 characters.",
                    id="pigeonhole.E031",
                )
            )
        if not isinstance(options, dict):
            errors.append(
                Error(
                    f"PIGEONHOLE['CATEGORIES'][{slug!r}] must be a dict, got {options!r}.",
                    hint="For example: {'label': _('Comments'), 'email': True}.",
                    id="pigeonhole.E032",
                )
            )
            continue
        unknown = sorted(set(options) - set(CATEGORY_KEYS), key=str)
        wrong = [
            key
            for key in (*CHANNELS, "optional")
            if key in options and not isinstance(options[key], bool)
        ]
        if unknown or wrong:
            problem = f"unknown key(s) {', '.join(map(str, unknown))}" if unknown else ""
            if wrong:
                problem += ("; " if problem else "") + f"{', '.join(wrong)} must be True or False"
            errors.append(
                Error(
                    f"PIGEONHOLE['CATEGORIES'][{slug!r}]: {problem}.",
                    hint=f"A category takes {', '.join(CATEGORY_KEYS)}.",
                    id="pigeonhole.E032",
                )
            )
    return errors


def _user_language_errors(getter: object) -> list[Error]:
    if getter is None or callable(getter):
        return []
    problem = f"is {getter!r}, not a callable or the import string of one"
    if isinstance(getter, str):
        try:
            found = import_string(getter)
        except ImportError as exc:
            problem = f"{getter!r} does not import: {exc}"
        else:
            if callable(found):
                return []
            problem = f"{getter!r} names {type(found).__name__}, not a callable"
    return [
        Error(
            f"PIGEONHOLE['USER_LANGUAGE'] {problem}.",
            hint="Give a function taking a user and returning a language code, such as "
            "'myproject.users.language_of', or None for LANGUAGE_CODE.",
            id="pigeonhole.E035",
        )
    ]


def _sends_email(raw: dict[str, object]) -> bool:
    """
    Tell whether the settings email anyone: ``EMAIL_LEVELS`` or a category emailing by default.

    A site that sends no email needs no ``SITE_URL``, and a warning on its every command
    would teach people to ignore warnings. Neither ``email=True`` on one send nor digests (sent
    only when the site schedules ``pigeonhole_digest``) are visible here; rendering such an
    email raises ``ImproperlyConfigured``, naming the fix.
    """
    levels = raw.get("EMAIL_LEVELS", DEFAULTS["EMAIL_LEVELS"])
    if isinstance(levels, Iterable) and not isinstance(levels, str | bytes) and list(levels):
        return True
    categories = raw.get("CATEGORIES", {})
    if not isinstance(categories, dict):
        return False
    return any(
        isinstance(options, dict) and options.get("email") is True
        for slug, options in categories.items()
        if slug != ""  # OTHER's email only lets EMAIL_LEVELS and email=True through
    )


@register(Tags.compatibility)
def check_email(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    """Check the email, digest and category settings."""
    raw = getattr(settings, "PIGEONHOLE", {})
    if not isinstance(raw, dict):
        return []  # check_settings reports it
    errors: list[CheckMessage] = [*_rule_errors(EMAIL_RULES, raw)]
    errors += _category_errors(raw.get("CATEGORIES", {}))
    site_url = raw.get("SITE_URL")
    if site_url is not None and (
        not isinstance(site_url, str) or not site_url.startswith(("http://", "https://"))
    ):
        errors.append(
            Error(
                f"PIGEONHOLE['SITE_URL'] must be an http(s) URL, got {site_url!r}.",
                hint="For example: 'https://example.com'.",
                id="pigeonhole.E034",
            )
        )
    errors.extend(_user_language_errors(raw.get("USER_LANGUAGE")))
    from django.apps import apps

    if not site_url and not apps.is_installed("django.contrib.sites") and _sends_email(raw):
        errors.append(
            Warning(
                "Emails need absolute links, and neither PIGEONHOLE['SITE_URL'] nor "
                "django.contrib.sites says where the site is.",
                hint="Set PIGEONHOLE['SITE_URL'] = 'https://example.com'.",
                id="pigeonhole.W010",
            )
        )
    return errors


#: Cache backends that each process keeps to itself, or that keep nothing.
_UNSHARED_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache": "keeps a separate cache in each "
    "process: a message sent from another process may show only minutes later",
    "django.core.cache.backends.dummy.DummyCache": "keeps nothing: no page is spared its query",
}


@register(Tags.caches)
def check_cache(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    """Check that PIGEONHOLE['CACHE'] names a cache every process shares."""
    raw = getattr(settings, "PIGEONHOLE", {})
    alias = raw.get("CACHE") if isinstance(raw, dict) else None
    if alias is None:
        return []
    caches = getattr(settings, "CACHES", {}) or {}
    if not isinstance(alias, str) or alias not in caches:
        return [
            Error(
                f"PIGEONHOLE['CACHE'] = {alias!r} is not an alias in CACHES.",
                hint=f"Use one of {', '.join(map(repr, caches)) or 'your CACHES aliases'}, "
                "or None to turn the cache off.",
                id="pigeonhole.E040",
            )
        ]
    backend = str(caches[alias].get("BACKEND", ""))
    if backend in _UNSHARED_CACHES:
        return [
            Warning(
                f"PIGEONHOLE['CACHE'] names {alias!r}, a {backend.rsplit('.', 1)[-1]}, which "
                f"{_UNSHARED_CACHES[backend]}.",
                hint="Point PIGEONHOLE['CACHE'] at a Redis, Memcached or database cache, "
                "or set it to None.",
                id="pigeonhole.W040",
            )
        ]
    return []
