"""
The pages where users choose how they are told: preferences and unsubscribe.

The unsubscribe URL is the one page that needs no login: the signed token in
its path is the credential, naming one user, one category and one channel.
Its POST answers RFC 8058 one-click requests from mail clients, which carry no
cookie and no CSRF token.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .. import api
from ..categories import Category, get_categories, get_preferences, set_preference
from ..mail import ALL_CATEGORIES, MUTE_CHANNEL, read_unsubscribe_token

__all__ = ["PreferencesForm", "preferences", "unsubscribe"]

CHANNEL_LABELS = {"inbox": _("Inbox"), "email": _("Email"), "digest": _("Digest")}


class PreferencesForm(forms.Form):
    """One checkbox per category and channel; fixed categories are shown disabled."""

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        current = get_preferences(user)
        self.rows: list[tuple[Category, list[Any]]] = []
        for category in get_categories().values():
            fields = []
            for channel in category.channels:
                name = f"{category.slug or '_other'}__{channel}"
                self.fields[name] = forms.BooleanField(
                    label=CHANNEL_LABELS[channel],
                    required=False,
                    initial=current[(category.slug, channel)],
                    disabled=not category.optional,
                )
                fields.append((name, channel))
            self.rows.append((category, fields))

    def grouped(self) -> list[tuple[Category, list[Any]]]:
        """Return ``(category, bound fields)`` pairs, for templates."""
        return [(category, [self[name] for name, _ in fields]) for category, fields in self.rows]

    def save(self) -> int:
        """Record every changeable choice; return how many were recorded."""
        saved = 0
        for category, fields in self.rows:
            if not category.optional:
                continue
            for name, channel in fields:
                saved += set_preference(self.user, category.slug, channel, self.cleaned_data[name])
        return saved


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    """Show and save the logged-in user's choices, as a plain CSRF-protected form."""
    form = PreferencesForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        return HttpResponseRedirect(reverse("pigeonhole:preferences") + "?saved=1")
    return render(
        request,
        "pigeonhole/preferences.html",
        {"form": form, "saved": request.GET.get("saved") == "1"},
    )


def _apply(user: Any, category: str, channel: str) -> list[Category]:
    """Turn ``channel`` off for ``category`` (or for all with ``*``); return what changed."""
    categories = get_categories()
    chosen = list(categories.values()) if category == ALL_CATEGORIES else [categories.get(category)]
    return [
        cat for cat in chosen if cat is not None and set_preference(user, cat.slug, channel, False)
    ]


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """
    Turn one category's email (or every digest) off, or mute a thread, without logging in.

    GET shows a confirmation page, so link scanners that follow every URL in
    an email unsubscribe nobody; POST, from that page or a mail client's
    one-click request, does it.
    """
    try:
        user_id, category, channel = read_unsubscribe_token(token)
    except signing.SignatureExpired:
        return _unsubscribe_page(request, "expired", status=400)
    except signing.BadSignature:
        return _unsubscribe_page(request, "invalid", status=400)
    user = get_user_model()._default_manager.filter(pk=user_id).first()
    if user is None:
        return _unsubscribe_page(request, "invalid", status=400)
    if channel == MUTE_CHANNEL:
        # The "category" of a mute link is the thread's key.
        if request.method == "GET":
            return _unsubscribe_page(request, "confirm_mute")
        return _unsubscribe_page(request, "muted" if api.mute(user, category) else "was_muted")
    categories = get_categories()
    label = (
        _("all categories")
        if category == ALL_CATEGORIES
        else getattr(categories.get(category), "label", category)
    )
    if request.method == "GET":
        return _unsubscribe_page(request, "confirm", label=label, channel=channel)
    changed = _apply(user, category, channel)
    return _unsubscribe_page(request, "done" if changed else "fixed", label=label, channel=channel)


def _unsubscribe_page(
    request: HttpRequest, state: str, status: int = 200, **context: Any
) -> HttpResponse:
    context["channel_label"] = CHANNEL_LABELS.get(context.get("channel", ""), "")
    return render(
        request, "pigeonhole/unsubscribe.html", {"state": state, **context}, status=status
    )
