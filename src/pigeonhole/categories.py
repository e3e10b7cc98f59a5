"""
Message categories and what each user wants told, per category and channel.

A site declares its categories in ``PIGEONHOLE["CATEGORIES"]``; a user's
``Preference`` row overrides a category's default for one channel. Messages
sent without a category fall in a built-in one, ``OTHER`` (the empty slug).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from .conf import pigeonhole_settings

__all__ = [
    "CHANNELS",
    "OTHER",
    "Category",
    "enabled_users",
    "get_categories",
    "get_category",
    "get_preferences",
    "inbox_recipients",
    "set_preference",
]

CHANNELS = ("inbox", "email", "digest")
#: The slug of messages sent without a category.
OTHER = ""
#: Keys a category's settings may hold.
CATEGORY_KEYS = ("label", "inbox", "email", "digest", "optional")


@dataclass(frozen=True)
class Category:
    """
    One category as the site declared it.

    ``email`` on means every message in the category is emailed at once;
    ``digest`` on lists the unread ones in digests. With ``optional`` users may
    change either channel (and ``inbox``) on their preferences page.
    """

    slug: str
    label: Any
    inbox: bool = True
    email: bool = False
    digest: bool = True
    optional: bool = True

    def default(self, channel: str) -> bool:
        return bool(getattr(self, channel))

    @property
    def channels(self) -> tuple[str, ...]:
        """Return the channels a user may choose for; ``OTHER`` keeps its inbox."""
        return CHANNELS[1:] if self.slug == OTHER else CHANNELS


def get_categories() -> dict[str, Category]:
    """Return the declared categories, then ``OTHER``, keyed by slug."""
    declared = pigeonhole_settings.CATEGORIES
    result: dict[str, Category] = {}
    if isinstance(declared, dict):
        for slug, options in declared.items():
            if slug == OTHER or not isinstance(options, dict):
                continue
            known = {key: options[key] for key in CATEGORY_KEYS if key in options}
            known.setdefault("label", slug)
            result[slug] = Category(slug=slug, **known)
    # ``email`` for OTHER means EMAIL_LEVELS and email=True reach the user;
    # nothing else sends uncategorised messages by email.
    other = declared.get(OTHER) if isinstance(declared, dict) else None
    options = {key: other[key] for key in CATEGORY_KEYS if isinstance(other, dict) and key in other}
    options.setdefault("label", _("Other notifications"))
    options.setdefault("email", True)
    result[OTHER] = Category(slug=OTHER, **options)
    return result


def get_category(slug: str | None) -> Category:
    """Return the category of a message; an unknown or missing slug is ``OTHER``."""
    categories = get_categories()
    return categories.get(slug or OTHER) or categories[OTHER]


def _explicit(user_ids: Iterable[Any], category: str, channel: str) -> dict[Any, bool]:
    from .models import Preference

    ids = list(user_ids)
    found: dict[Any, bool] = {}
    for start in range(0, len(ids), 1000):
        rows = Preference.objects.filter(
            user_id__in=ids[start : start + 1000], category=category, channel=channel
        ).values_list("user_id", "enabled")
        found.update(rows)
    return found


def enabled_users(user_ids: Iterable[Any], category: str | None, channel: str) -> set[Any]:
    """Return those of ``user_ids`` who get ``channel`` for ``category``."""
    cat = get_category(category)
    ids = set(user_ids)
    if not cat.optional:
        return ids if cat.default(channel) else set()
    explicit = _explicit(ids, cat.slug, channel)
    return {pk for pk in ids if explicit.get(pk, cat.default(channel))}


def opted_out(user_ids: Iterable[Any], category: str | None, channel: str) -> set[Any]:
    """Return those of ``user_ids`` who turned ``channel`` off for ``category``."""
    cat = get_category(category)
    if not cat.optional:
        return set()
    return {pk for pk, on in _explicit(user_ids, cat.slug, channel).items() if not on}


def inbox_recipients(recipients: Any, category: str | None) -> Any:
    """
    Return ``recipients`` less the users who turned this category's inbox off.

    A QuerySet stays a QuerySet, so a send to a million users still copies
    recipients inside the database.
    """
    from .backends.base import Recipients
    from .models import Preference

    cat = get_category(category)
    if cat.slug == OTHER or not cat.optional:
        return recipients
    prefs = Preference.objects.filter(category=cat.slug, channel="inbox")
    if recipients.queryset is not None:
        if cat.inbox:
            users = prefs.filter(enabled=False).values("user_id")
            return Recipients(queryset=recipients.queryset.exclude(pk__in=users))
        users = prefs.filter(enabled=True).values("user_id")
        return Recipients(queryset=recipients.queryset.filter(pk__in=users))
    keep = enabled_users(recipients.ids, cat.slug, "inbox")
    return Recipients(ids=[pk for pk in recipients.ids if pk in keep])


def get_preferences(user: Any) -> dict[tuple[str, str], bool]:
    """Return ``{(category, channel): enabled}`` for every category and channel."""
    from .models import Preference

    explicit = {
        (category, channel): enabled
        for category, channel, enabled in Preference.objects.filter(user=user).values_list(
            "category", "channel", "enabled"
        )
    }
    result = {}
    for cat in get_categories().values():
        for channel in cat.channels:
            value = cat.default(channel)
            if cat.optional:
                value = explicit.get((cat.slug, channel), value)
            result[(cat.slug, channel)] = value
    return result


def set_preference(user: Any, category: str, channel: str, enabled: bool) -> bool:
    """
    Record ``user``'s choice; return whether it was recorded.

    A category users may not change, or a channel it does not offer, records
    nothing: an old form or a forged request cannot switch it.
    """
    from .models import Preference

    cat = get_categories().get(category)
    if cat is None or not cat.optional or channel not in cat.channels:
        return False
    Preference.objects.update_or_create(
        user=user, category=category, channel=channel, defaults={"enabled": bool(enabled)}
    )
    return True
