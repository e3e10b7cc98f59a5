"""
``manage.py pigeonhole_purge``: delete what no inbox will show again.

Run it from cron or a scheduled task. Expired entries are invisible already and
only cost space; read entries past ``PIGEONHOLE["RETENTION_DAYS"]`` are history
a site chose not to keep. Content nobody holds an entry for goes with them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import ngettext

from ... import service
from ...conf import pigeonhole_settings


def describe(counts: dict[str, int], read_days: int | None) -> str:
    """Return a sentence naming each kind the purge covered, with its count."""
    parts = []
    if "expired" in counts:
        parts.append(
            ngettext("%(n)d expired entry", "%(n)d expired entries", counts["expired"])
            % {"n": counts["expired"]}
        )
    if read_days is not None:
        parts.append(
            ngettext(
                "%(n)d read entry older than %(days)d days",
                "%(n)d read entries older than %(days)d days",
                counts["read"],
            )
            % {"n": counts["read"], "days": read_days}
        )
    parts.append(
        ngettext(
            "%(n)d message with no recipients left",
            "%(n)d messages with no recipients left",
            counts["messages"],
        )
        % {"n": counts["messages"]}
    )
    return ", ".join(parts)


class Command(BaseCommand):
    help = (
        "Delete expired inbox entries and read ones older than a number of days, "
        "then messages no inbox holds any more."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--expired", action="store_true", help="Delete entries whose expiry has passed."
        )
        parser.add_argument(
            "--read-older-than",
            type=int,
            metavar="DAYS",
            dest="read_days",
            help="Delete read entries that were read more than DAYS days ago.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        expired = options["expired"]
        read_days = options["read_days"]
        if read_days is not None and read_days < 0:
            raise CommandError(f"--read-older-than must be 0 or more days, got {read_days}.")
        if not expired and read_days is None:
            # The unattended default: what the site's settings say to drop.
            expired = True
            read_days = pigeonhole_settings.RETENTION_DAYS
            if read_days is None:
                self.stdout.write(
                    "No option given: deleting expired entries "
                    '(set PIGEONHOLE["RETENTION_DAYS"] to delete old read ones too).'
                )
            else:
                self.stdout.write(
                    "No option given: deleting expired entries and read entries older than "
                    f'{read_days} days (PIGEONHOLE["RETENTION_DAYS"]).'
                )
        read_before = None if read_days is None else timezone.now() - timedelta(days=read_days)
        dry_run = options["dry_run"]
        counts = service.store().purge(expired=expired, read_before=read_before, dry_run=dry_run)
        if not expired:
            counts.pop("expired", None)
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{verb} {describe(counts, read_days)}.")
