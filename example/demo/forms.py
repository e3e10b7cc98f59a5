from django import forms
from django.contrib.auth import get_user_model

import pigeonhole

# What the "Kind" menu offers: (level, how it is delivered).
KINDS = {
    "flash": (pigeonhole.INFO, "Flash info: shown once, kept nowhere"),
    "persistent_info": (pigeonhole.PERSISTENT_INFO, "Persistent info: stored until read"),
    "persistent_warning": (
        pigeonhole.PERSISTENT_WARNING,
        "Persistent warning: stored until read",
    ),
    "sticky_warning": (pigeonhole.STICKY_WARNING, "Sticky warning: stays until closed"),
}
# Flash and sticky messages live in this browser's cookie or session.
ONLY_FOR_ME = {"flash", "sticky_warning"}

RECIPIENTS = [
    ("me", "Myself"),
    ("user", "One user"),
    ("staff", "Group “staff”"),
    ("everyone", "Everyone"),
]


class SendForm(forms.Form):
    text = forms.CharField(label="Message", widget=forms.Textarea(attrs={"rows": 3}))
    subject = forms.CharField(required=False, max_length=255)
    url = forms.CharField(
        label="Link",
        required=False,
        max_length=2000,
        help_text="A path such as /admin/ or an http(s) URL.",
    )
    kind = forms.ChoiceField(
        choices=[(key, label) for key, (_, label) in KINDS.items()],
        initial="persistent_info",
    )
    recipient = forms.ChoiceField(choices=RECIPIENTS, initial="me", widget=forms.RadioSelect)
    email = forms.BooleanField(
        label="Email it too",
        required=False,
        help_text="A line in the terminal running the demo; the whole email in example/sent-mail/.",
    )
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
        empty_label="— pick a user —",
        to_field_name="username",
    )

    def clean(self):
        data = super().clean()
        kind, recipient = data.get("kind"), data.get("recipient")
        if kind in ONLY_FOR_ME and recipient not in (None, "me"):
            self.add_error(
                "recipient",
                "Flash and sticky messages live in your own session: send them to yourself, "
                "or pick a persistent kind.",
            )
        if kind in ONLY_FOR_ME and data.get("email"):
            self.add_error("email", "Only stored messages are emailed: pick a persistent kind.")
        if recipient == "user" and not data.get("user"):
            self.add_error("user", "Pick the user to send to.")
        return data

    @property
    def level(self) -> int:
        return KINDS[self.cleaned_data["kind"]][0]
