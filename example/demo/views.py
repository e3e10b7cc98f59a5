"""
The demo's home page: a sign-in form for visitors; for users, the latest
unread messages and a form to send one.

Everything here uses the public API (``import pigeonhole``) or plain
``django.contrib.messages``, as a site would. The inbox itself is
pigeonhole's own page, ``pigeonhole:inbox``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

import pigeonhole
from pigeonhole.exceptions import InvalidMessage

from .accounts import DEMO_ACCOUNTS, STAFF_GROUP
from .forms import SendForm


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        context = {"form": AuthenticationForm(request), "accounts": DEMO_ACCOUNTS, "next": "/"}
        return render(request, "demo/home.html", context)
    if request.method == "POST":
        form = SendForm(request.POST)
        if form.is_valid():
            try:
                notice = send(request, form)
            except InvalidMessage as exc:
                # pigeonhole's own validation: its text says what to change.
                form.add_error(None, str(exc))
            else:
                if notice:
                    messages.success(request, notice)
                return redirect("home")
    else:
        form = SendForm()
        # Visiting the page produces a message too: a flash one, shown once and kept nowhere.
        messages.info(request, f"You opened the home page at {timezone.now():%H:%M:%S} UTC.")
    return render(request, "demo/home.html", {"form": form})


def send(request: HttpRequest, form: SendForm) -> str | None:
    """Deliver the form's message; return a note for the sender, if any."""
    data = form.cleaned_data
    # Only the options given: flash and sticky messages take none, and say so.
    options = {name: data[name] for name in ("subject", "url") if data[name]}
    recipient = data["recipient"]
    if recipient == "me":
        # The contrib.messages way: transient, sticky or stored, by level.
        if data["email"]:
            options["email"] = True
        pigeonhole.add_message(request, form.level, data["text"], **options)
        return None
    if recipient == "user":
        to = data["user"]
    elif recipient == "staff":
        to = Group.objects.filter(name=STAFF_GROUP).first()
        if to is None:
            raise InvalidMessage("There is no group “staff”; run manage.py demo_setup first.")
    else:
        to = get_user_model().objects.filter(is_active=True)
    if data["email"]:
        options["email"] = True
    sent = pigeonhole.send(to, data["text"], level=form.level, from_user=request.user, **options)
    count = sent.recipient_count
    return f"Sent to {count} recipient{'' if count == 1 else 's'}."
