"""
``manage.py pigeonhole_export --user alice [--output alice.json]``.

Write everything pigeonhole stores for one user as JSON, for a personal-data
request: the document ``pigeonhole.export_user()`` returns.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import ngettext

from ... import api


class Command(BaseCommand):
    help = "Export every message, state, preference and muted thread stored for one user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--user", required=True, metavar="USERNAME_OR_ID", help="The user to export."
        )
        parser.add_argument(
            "--output", metavar="FILE", help="Write the JSON here instead of standard output."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = self.find_user(options["user"])
        document = api.export_user(user)
        text = json.dumps(document, indent=2, ensure_ascii=False)
        if options["output"] is None:
            self.stdout.write(text)
            return
        with open(options["output"], "w", encoding="utf-8") as file:
            file.write(text + "\n")
        count = len(document["entries"])
        entries = ngettext("%(count)d entry", "%(count)d entries", count) % {"count": count}
        self.stdout.write(f"Exported {entries} of {user.get_username()} to {options['output']}.")

    def find_user(self, value: str) -> Any:
        User = get_user_model()
        manager = User._default_manager
        user = manager.filter(**{User.USERNAME_FIELD: value}).first()
        if user is None:
            try:
                user = manager.filter(pk=User._meta.pk.to_python(value)).first()
            except Exception:  # a username that is no valid primary key
                user = None
        if user is None:
            raise CommandError(
                f"No user {value!r}: give a username ({User.USERNAME_FIELD}) or a user id."
            )
        return user
