"""
The demo's email backend: one line in the terminal per email, the whole email in a file.

A raw MIME dump of every email would bury the demo's logins and log; the line says who got
what, and the file under ``example/sent-mail/`` (or ``DEMO_MAIL_DIR``) keeps its links.
"""

import os
import sys

from django.core.mail.backends.filebased import EmailBackend as FileEmailBackend

MAIL_DIR = os.environ.get("DEMO_MAIL_DIR") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sent-mail"
)


class EmailBackend(FileEmailBackend):
    """Save each email under ``MAIL_DIR`` and print a one-line summary of it."""

    def __init__(self, *args, file_path=None, **kwargs):
        super().__init__(*args, file_path=file_path or MAIL_DIR, **kwargs)

    def send_messages(self, email_messages):
        sent = super().send_messages(email_messages)
        where = os.path.relpath(self._get_filename())
        if where.startswith(".."):
            where = self._get_filename()
        for message in email_messages[:sent]:
            print(f"Email to {', '.join(message.to)}: “{message.subject}” (in {where})")
        sys.stdout.flush()
        return sent
