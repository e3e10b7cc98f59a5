"""
Send one message from a separate OS process, as a shell or a task worker would.

    python -m tests.live.send_from_process <user id> <text>

Run it with the environment ``server.process_env()`` builds: through
``tests/live/server_settings.py`` the process writes to the test run's database
and publishes with the test's ``PIGEONHOLE`` settings, where the server under
test reads and listens.
"""

import os
import sys


def main(user_id: str, text: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.live.server_settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    import pigeonhole

    pigeonhole.send(get_user_model().objects.get(pk=user_id), text)


if __name__ == "__main__":
    main(*sys.argv[1:])
