"""
``manage.py pigeonhole_send alice bob --message "Maintenance tonight at 22:00"``.

Send to usernames, groups (``--group``) or every active user (``--all``). The
text may come from standard input (``--message -``), so a script can pipe in a
message of any length without quoting it.
"""

from __future__ import annotations

import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q, QuerySet
from django.utils.translation import ngettext

from ... import api, constants
from ...exceptions import InvalidMessage

LEVELS = {
    "debug": constants.DEBUG,
    "info": constants.INFO,
    "success": constants.SUCCESS,
    "warning": constants.WARNING,
    "error": constants.ERROR,
}


def parse_level(value: str) -> int:
    """Accept a level's name (``info``) or its number, as the level is stored."""
    name = value.strip().lower()
    if name in LEVELS:
        return LEVELS[name]
    try:
        return int(name)
    except ValueError:
        raise CommandError(
            f"Unknown level {value!r}; use {', '.join(LEVELS)} or an integer such as 21."
        ) from None


class Command(BaseCommand):
    help = "Send a stored message to users, groups or everyone."
    # ``call_command(..., stdin=...)`` feeds ``--message -`` in tests, as for createsuperuser.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("usernames", nargs="*", metavar="username", help="Recipients.")
        parser.add_argument(
            "--group",
            action="append",
            default=[],
            dest="groups",
            metavar="NAME",
            help="Send to every member of this group; repeat for more groups.",
        )
        parser.add_argument(
            "--all", action="store_true", dest="everyone", help="Send to every active user."
        )
        parser.add_argument(
            "-m",
            "--message",
            required=True,
            help='The text to send; "-" reads it from standard input.',
        )
        parser.add_argument(
            "--level",
            default="info",
            help="debug, info (default), success, warning, error, or a level number.",
        )
        parser.add_argument("--subject", default="", help="A subject line.")
        parser.add_argument("--url", default="", help="A link: a path or an http(s) URL.")

    def handle(self, *args: Any, **options: Any) -> None:
        level = parse_level(options["level"])
        text = options["message"]
        if text == "-":
            text = options.get("stdin", sys.stdin).read().strip()
        recipients = self.get_recipients(
            options["usernames"], options["groups"], options["everyone"]
        )
        try:
            sent = api.send(
                recipients,
                text,
                level=level,
                subject=options["subject"],
                url=options["url"],
            )
        except InvalidMessage as exc:
            raise CommandError(str(exc)) from exc
        count = sent.recipient_count
        self.stdout.write(
            self.style.SUCCESS(
                ngettext(
                    "Sent message %(id)s to %(count)d user.",
                    "Sent message %(id)s to %(count)d users.",
                    count,
                )
                % {"id": sent.id, "count": count}
            )
        )

    def get_recipients(self, usernames: list[str], groups: list[str], everyone: bool) -> QuerySet:
        """
        Return a query of the recipients, or fail naming every unknown one.

        Everything is looked up before anything is sent, so a typo in one name
        never leaves the others with a message the rest did not get.
        """
        User = get_user_model()
        users = User._default_manager.all()
        if everyone:
            if usernames or groups:
                raise CommandError(
                    "--all already includes everyone; leave out usernames and --group."
                )
            try:
                User._meta.get_field("is_active")
            except FieldDoesNotExist:
                return users
            return users.filter(is_active=True)
        if not usernames and not groups:
            raise CommandError("Name the recipients: usernames, --group NAME, or --all.")

        field = User.USERNAME_FIELD
        found_users = set(users.filter(**{f"{field}__in": usernames}).values_list(field, flat=True))
        found_groups = dict(Group.objects.filter(name__in=groups).values_list("name", "pk"))
        unknown_users = [name for name in dict.fromkeys(usernames) if name not in found_users]
        unknown_groups = [name for name in dict.fromkeys(groups) if name not in found_groups]
        problems = [
            f"unknown {kind}{'s' if len(names) > 1 else ''}: {', '.join(names)}"
            for kind, names in (("user", unknown_users), ("group", unknown_groups))
            if names
        ]
        if problems:
            raise CommandError(f"Nothing sent; {'; '.join(problems)}.")

        recipients = users.filter(
            Q(**{f"{field}__in": usernames}) | Q(groups__in=list(found_groups.values()))
        )
        if not recipients.exists():
            # Only possible without usernames: every name given was found.
            raise CommandError(f"Nothing sent; no user is in {', '.join(groups)}.")
        return recipients
