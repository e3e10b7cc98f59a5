"""
``manage.py pigeonhole_digest``: email each user one digest of what they missed.

Run it from cron or a periodic task every few minutes, on as many machines as
you like: each entry is claimed before it is listed, so no user ever gets the
same entry twice. ``--enqueue`` hands the work to the tasks backend instead.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import ngettext

from ...conf import pigeonhole_settings


class Command(BaseCommand):
    help = (
        "Email each user one digest of their unread messages not emailed yet and older "
        "than PIGEONHOLE['DIGEST_DELAY_MINUTES']."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--delay",
            type=int,
            metavar="MINUTES",
            help="list entries older than this (default: DIGEST_DELAY_MINUTES)",
        )
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="enqueue the send_digests_task task instead of sending here",
        )

    def handle(self, *args: Any, delay: int | None = None, enqueue: bool = False, **options: Any):
        from ...tasks import enqueue as enqueue_task
        from ...tasks import send_digests, send_digests_task

        if delay is not None and delay < 0:
            raise CommandError("--delay must be 0 or more minutes.")
        if enqueue:
            if delay is not None:
                raise CommandError("--delay applies here only; the task uses the setting.")
            result = enqueue_task(send_digests_task)
            self.stdout.write(f"Enqueued {result.id} on {pigeonhole_settings.TASK_BACKEND!r}.")
            return
        minutes = pigeonhole_settings.DIGEST_DELAY_MINUTES if delay is None else delay
        sent = send_digests(delay=timedelta(minutes=minutes))
        self.stdout.write(ngettext("Sent %(n)d digest.", "Sent %(n)d digests.", sent) % {"n": sent})
