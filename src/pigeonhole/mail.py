"""
Build the emails pigeonhole sends: one per message, and digests.

Everything here renders or signs; nothing sends. ``tasks`` decides who gets
what and hands the result to Django's email backend. Sites restyle the emails
by overriding the templates under ``pigeonhole/email/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.module_loading import import_string
from django.utils.text import Truncator

from .categories import OTHER, Category, get_category
from .conf import pigeonhole_settings
from .message import StoredMessage

__all__ = [
    "absolute_url",
    "build_digest_email",
    "build_message_email",
    "read_unsubscribe_token",
    "site_url",
    "unsubscribe_token",
    "user_language",
]

_SALT = "pigeonhole.unsubscribe"
#: The unsubscribe link of a digest turns off digests for every category.
ALL_CATEGORIES = "*"
#: The channel of a mute link: its token names a thread key where others name a category,
#: and following it mutes that thread for the user (no entries, no emails).
MUTE_CHANNEL = "thread"


def site_url() -> str:
    """
    Return the site's base URL, such as ``https://example.com``, for links in emails.

    ``PIGEONHOLE["SITE_URL"]`` wins; otherwise the current ``Site`` of
    ``django.contrib.sites`` is used, over HTTPS. An email is read outside any
    request, so there is no host to take it from.
    """
    configured = pigeonhole_settings.SITE_URL
    if configured:
        return str(configured).rstrip("/")
    if apps.is_installed("django.contrib.sites"):
        from django.contrib.sites.models import Site

        return f"https://{Site.objects.get_current().domain}"
    raise ImproperlyConfigured(
        "Emails need absolute links: set PIGEONHOLE['SITE_URL'] = 'https://example.com' "
        "or add django.contrib.sites to INSTALLED_APPS."
    )


def absolute_url(url: str) -> str:
    """Return ``url`` made absolute against :func:`site_url`; http(s) URLs stay."""
    if not url or url.startswith(("http://", "https://")):
        return url
    return site_url() + (url if url.startswith("/") else f"/{url}")


def _domain() -> str:
    return urlsplit(site_url()).hostname or "localhost"


def unsubscribe_token(user_id: Any, category: str, channel: str) -> str:
    """
    Sign who may be unsubscribed from what: one user, one category, one channel.

    With ``MUTE_CHANNEL`` the category is a thread key, and the link mutes that thread.

    The token is the only credential of the unsubscribe link (it works
    without logging in), so it names exactly one switch and expires after
    ``UNSUBSCRIBE_DAYS``.
    """
    return signing.dumps({"u": str(user_id), "c": category, "ch": channel}, salt=_SALT)


def read_unsubscribe_token(token: str) -> tuple[str, str, str]:
    """
    Return ``(user_id, category, channel)`` from a token.

    Raise ``signing.BadSignature`` (or its subclass ``SignatureExpired``) for
    a forged, altered or expired one.
    """
    max_age = pigeonhole_settings.UNSUBSCRIBE_DAYS * 86400
    data = signing.loads(token, salt=_SALT, max_age=max_age)
    if not isinstance(data, dict) or not {"u", "c", "ch"} <= set(data):
        raise signing.BadSignature("Malformed unsubscribe token.")
    return str(data["u"]), str(data["c"]), str(data["ch"])


def _unsubscribe_url(user_id: Any, category: str, channel: str) -> str:
    token = unsubscribe_token(user_id, category, channel)
    return absolute_url(reverse("pigeonhole:unsubscribe", args=[token]))


def _preferences_url() -> str:
    return absolute_url(reverse("pigeonhole:preferences"))


def user_language(user: Any) -> str:
    """
    Return the language to write to ``user`` in.

    An email is rendered in a task, outside the recipient's requests: the
    language active there is the sender's, or none. ``USER_LANGUAGE`` says
    where the site keeps each user's choice; a code the site does not offer
    (``LANGUAGES``) falls back to ``LANGUAGE_CODE``.
    """
    getter = pigeonhole_settings.USER_LANGUAGE
    if getter:
        if isinstance(getter, str):
            getter = import_string(getter)
        code = getter(user)
        if code:
            try:
                return translation.get_supported_language_variant(str(code))
            except LookupError:
                pass
    return settings.LANGUAGE_CODE


def _render_subject(template: str, context: dict[str, Any]) -> str:
    # A header cannot hold a line break.
    return " ".join(render_to_string(template, context).split())


def _from_email() -> str:
    return pigeonhole_settings.EMAIL_FROM or settings.DEFAULT_FROM_EMAIL


def _list_headers(headers: dict[str, str], url: str | None) -> None:
    if url:
        headers["List-Unsubscribe"] = f"<{url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


def _email(
    kind: str, context: dict[str, Any], user: Any, headers: dict[str, str]
) -> EmailMultiAlternatives:
    """
    Render ``pigeonhole/email/<kind>_subject.txt``, ``<kind>.txt`` and ``<kind>.html``.

    All three are rendered in the recipient's language (:func:`user_language`),
    which ``Content-Language`` names.
    """
    language = user_language(user)
    headers["Content-Language"] = language
    with translation.override(language):
        email = EmailMultiAlternatives(
            subject=_render_subject(f"pigeonhole/email/{kind}_subject.txt", context),
            body=render_to_string(f"pigeonhole/email/{kind}.txt", context),
            from_email=_from_email(),
            to=[user.email],
            headers=headers,
        )
        email.attach_alternative(
            render_to_string(f"pigeonhole/email/{kind}.html", context), "text/html"
        )
    return email


def message_id(entry: StoredMessage) -> str:
    """Return the entry's ``Message-ID``: the same on every retry, so clients drop copies."""
    return f"<pigeonhole.entry.{entry.id}@{_domain()}>"


def thread_id(entry: StoredMessage) -> str | None:
    """Return the id that threads together every email about the entry's ``target``."""
    if entry.target_content_type_id is None:
        return None
    return (
        f"<pigeonhole.target.{entry.target_content_type_id}.{entry.target_object_id}@{_domain()}>"
    )


def build_message_email(user: Any, entry: StoredMessage) -> EmailMultiAlternatives:
    """
    Return the email telling ``user`` of one entry.

    Templates: ``pigeonhole/email/message_subject.txt``, ``message.txt`` and
    ``message.html``. The text is escaped in the HTML part unless the sender
    marked it safe.
    """
    category = get_category(entry.category)
    unsubscribe = _unsubscribe_url(user.pk, category.slug, "email") if category.optional else None
    mute = _unsubscribe_url(user.pk, entry.thread, MUTE_CHANNEL) if entry.thread else None
    context = {
        "user": user,
        "entry": entry,
        "message": entry.message,
        "category": category,
        "url": absolute_url(entry.url),
        "site_url": site_url(),
        "preferences_url": _preferences_url(),
        "unsubscribe_url": unsubscribe,
        "mute_url": mute,
        "subject": entry.subject or Truncator(str(entry.message)).chars(78),
    }
    headers = {"Message-ID": message_id(entry), "Auto-Submitted": "auto-generated"}
    thread = thread_id(entry)
    if thread:
        headers["In-Reply-To"] = thread
        headers["References"] = thread
    _list_headers(headers, unsubscribe)
    return _email("message", context, user, headers)


def build_digest_email(user: Any, entries: Sequence[StoredMessage]) -> EmailMultiAlternatives:
    """
    Return one email listing ``entries``, grouped by category.

    Templates: ``pigeonhole/email/digest_subject.txt``, ``digest.txt`` and
    ``digest.html``; ``groups`` is a list of ``(category, entries)``.
    """
    groups: dict[str, tuple[Category, list[StoredMessage]]] = {}
    for entry in entries:
        category = get_category(entry.category)
        groups.setdefault(category.slug, (category, []))[1].append(entry)
    # Declared categories first, in the order the site declared them.
    ordered = sorted(groups.values(), key=lambda group: group[0].slug == OTHER)
    unsubscribe = _unsubscribe_url(user.pk, ALL_CATEGORIES, "digest")
    context = {
        "user": user,
        "groups": [
            (category, [(entry, absolute_url(entry.url)) for entry in items])
            for category, items in ordered
        ],
        "count": len(entries),
        "site_url": site_url(),
        "preferences_url": _preferences_url(),
        "unsubscribe_url": unsubscribe,
    }
    headers = {"Auto-Submitted": "auto-generated"}
    _list_headers(headers, unsubscribe)
    return _email("digest", context, user, headers)
