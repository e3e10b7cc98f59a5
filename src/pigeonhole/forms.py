"""
Forms behind the admin: the "send a message" action and message editing.

Both validate through ``validation.build_message``, the rules ``send()``
applies, so the admin can neither send nor store what the API refuses.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from . import constants
from .exceptions import InvalidMessage
from .models import Message
from .validation import build_message

__all__ = ["LEVEL_CHOICES", "MessageAdminForm", "SendMessageForm"]

#: The levels an administrator picks from; debug messages are for developers.
LEVEL_CHOICES = [
    (constants.INFO, _("Info")),
    (constants.SUCCESS, _("Success")),
    (constants.WARNING, _("Warning")),
    (constants.ERROR, _("Error")),
]

_URL_HELP = _("Optional link: a path such as /orders/42/ or an http(s) URL.")


class SendMessageForm(forms.Form):
    """
    Collect what the admin action sends.

    Only the shape of each value is checked here; ``send()`` applies the full
    rules (length limit, allowed URL schemes) and the action shows its
    ``InvalidMessage`` on this form.
    """

    level = forms.TypedChoiceField(
        label=_("Level"), choices=LEVEL_CHOICES, coerce=int, initial=constants.INFO
    )
    subject = forms.CharField(label=_("Subject"), max_length=255, required=False)
    message = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 6}))
    url = forms.CharField(label=_("URL"), max_length=2000, required=False, help_text=_URL_HELP)


class MessageAdminForm(forms.ModelForm):
    """
    Edit a sent message's content under the rules ``send()`` applies.

    Without this, the admin would accept what the API refuses, such as a
    ``javascript:`` URL that every recipient's inbox would then render.
    """

    class Meta:
        model = Message
        # Not ``safe``, ``created`` or ``expires``: marking text as HTML would let
        # anyone with the change permission put script in others' inboxes, and
        # each entry keeps its own copy of the expiry.
        fields = (
            "level",
            "subject",
            "message",
            "url",
            "extra_tags",
            "data",
            "from_user",
            "in_reply_to",
            "close_timeout",
            "email",
        )
        help_texts = {"url": _URL_HELP}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            checked = build_message(
                cleaned.get("level", self.instance.level),
                cleaned.get("message", self.instance.message),
                subject=cleaned.get("subject", self.instance.subject),
                extra_tags=cleaned.get("extra_tags", self.instance.extra_tags),
                url=cleaned.get("url", self.instance.url),
                data=cleaned.get("data", self.instance.data),
                close_timeout=cleaned.get("close_timeout", self.instance.close_timeout),
                email=cleaned.get("email", self.instance.email),
            )
        except InvalidMessage as exc:
            raise forms.ValidationError(str(exc), code="invalid_message") from exc
        # Store the normalised values (extra tags joined by single spaces, say).
        for name in ("level", "message", "subject", "extra_tags", "url"):
            if name in cleaned:
                cleaned[name] = getattr(checked, name)
        return cleaned
