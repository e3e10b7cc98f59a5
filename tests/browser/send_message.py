"""
Send one message from a separate OS process, as a shell or a task worker would.

    python -m tests.browser.send_message <PIGEONHOLE as JSON> <user id> <text>

The browser tests run on SQLite, whose in-memory test database this process
cannot see; so the settings name the Redis backend and broker, which it shares
with the server under test. The recipient is named by id alone: nothing here
needs the user table.
"""

import json
import os
import sys


def main(pigeonhole_settings: str, user_id: str, text: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    from django.conf import settings

    settings.PIGEONHOLE = json.loads(pigeonhole_settings)
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    import pigeonhole

    recipient = get_user_model()(pk=int(user_id))
    pigeonhole.send([recipient], text, subject="From another process")


if __name__ == "__main__":
    main(*sys.argv[1:])
