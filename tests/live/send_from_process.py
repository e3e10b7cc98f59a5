"""
Send one message from a separate OS process, as a shell or a task worker would.

    python -m tests.live.send_from_process <database name> <PIGEONHOLE as JSON> <user id> <text>
        [<CACHES as JSON>]

The database name is the test run's (pytest-django's test database), so the
process writes where the server under test reads.
"""

import json
import os
import sys


def main(
    database: str, pigeonhole_settings: str, user_id: str, text: str, caches: str = ""
) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = database
    settings.PIGEONHOLE = json.loads(pigeonhole_settings)
    if caches:
        settings.CACHES = json.loads(caches)
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    import pigeonhole

    pigeonhole.send(get_user_model().objects.get(pk=user_id), text)


if __name__ == "__main__":
    main(*sys.argv[1:])
