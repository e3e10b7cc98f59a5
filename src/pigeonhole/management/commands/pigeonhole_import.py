"""
``manage.py pigeonhole_import --from messages_extends [--dry-run]``.

Copies another library's messages, in the same database, into pigeonhole's
tables; running it again adds nothing (see ``compat/importers/base.py``).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils.module_loading import import_string

from ...backends.db import DatabaseBackend
from ...compat.importers import READERS, Importer
from ...compat.importers.base import ImportResult
from ...conf import pigeonhole_settings


class Command(BaseCommand):
    help = (
        "Import the messages of django-stored-messages, django-messages-extends, drf-messages, "
        "django-monitio or django-notifications from their tables in the same database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from", dest="source", required=True, choices=sorted(READERS), help="The library."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Read and count everything; write nothing."
        )
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="Rows per query and per transaction."
        )

    def handle(self, *args: Any, source: str, dry_run: bool, batch_size: int, **options: Any):
        if batch_size < 1:
            raise CommandError("--batch-size must be a positive number.")
        backend = pigeonhole_settings.BACKEND
        if isinstance(backend, str):
            backend = import_string(backend)
        if not issubclass(backend, DatabaseBackend):
            raise CommandError(
                "pigeonhole_import writes the database backend's tables; set "
                "PIGEONHOLE['BACKEND'] to 'pigeonhole.backends.db.DatabaseBackend' to import."
            )
        reader = READERS[source](connections[DEFAULT_DB_ALIAS])
        missing = reader.missing_tables()
        if missing:
            raise CommandError(
                f"No {', '.join(missing)} table in the database: run pigeonhole_import where "
                f"{source}'s tables are, before removing '{reader.app_label}' and its tables."
            )
        total = reader.count()
        verb = "would write" if dry_run else "written"
        self.stdout.write(f"Importing from {source}: {total} rows.")

        def progress(result: ImportResult) -> None:
            self.stdout.write(
                f"  {result.read}/{total} read, {result.written} {verb}, "
                f"{sum(result.skipped.values())} skipped"
            )

        result = Importer(reader, batch_size=batch_size, dry_run=dry_run, progress=progress).run()
        self.stdout.write(
            self.style.SUCCESS(
                f"{source}: {result.read} rows read, {result.written} messages {verb} "
                f"({result.entries} inbox entries), {sum(result.skipped.values())} skipped."
            )
        )
        for reason, count in sorted(result.skipped.items()):
            self.stdout.write(f"  skipped {count}: {reason}")
        if dry_run:
            self.stdout.write("Dry run: nothing was written.")
