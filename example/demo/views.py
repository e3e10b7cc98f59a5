"""
The demo's one page: the messages loop, the inbox and a form to send.

Everything here uses the public API (``import pigeonhole``) or plain
``django.contrib.messages``, as a site would.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

import pigeonhole
from pigeonhole.exceptions import InvalidMessage

from .accounts import STAFF_GROUP
from .forms import SendForm

INBOX_TABS = {"all": "Inbox", "archived": "Archived"}


@login_required
def home(request: HttpRequest) -> HttpResponse:
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

    state = request.GET.get("show", "all")
    if state not in INBOX_TABS:
        state = "all"
    entries = pigeonhole.inbox(request.user, state=state, limit=20)
    sender_ids = {entry.from_user_id for entry in entries if entry.from_user_id is not None}
    senders = dict(get_user_model().objects.filter(pk__in=sender_ids).values_list("pk", "username"))
    for entry in entries:
        entry.sender = senders.get(entry.from_user_id, "")
    return render(
        request,
        "demo/home.html",
        {
            "form": form,
            "entries": entries,
            "state": state,
            "tabs": INBOX_TABS,
            "unread": pigeonhole.unread_count(request.user),
            # "Mark all read" stops at the newest entry this page showed, so a
            # message arriving meanwhile stays unread.
            "newest_id": entries[0].id if entries and state == "all" else None,
        },
    )


def send(request: HttpRequest, form: SendForm) -> str | None:
    """Deliver the form's message; return a note for the sender, if any."""
    data = form.cleaned_data
    # Only the options given: flash and sticky messages take none, and say so.
    options = {name: data[name] for name in ("subject", "url") if data[name]}
    recipient = data["recipient"]
    if recipient == "me":
        # The contrib.messages way: transient, sticky or stored, by level.
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
    sent = pigeonhole.send(to, data["text"], level=form.level, from_user=request.user, **options)
    count = sent.recipient_count
    return f"Sent to {count} recipient{'' if count == 1 else 's'}."
