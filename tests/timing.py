"""
Waiting on the wall clock in tests without racing it.

The suite runs on loaded two-core machines, where a pause of a second between
two lines of a test is ordinary. A test that needs time to pass polls for the
outcome up to a generous deadline instead of sleeping a tight, fixed amount:
a fast machine is done at once, a slow one gets the time it needs.
"""

import time
from datetime import timedelta

from django.utils import timezone

__all__ = ["expire_in_the_past", "wait_until"]


def wait_until(condition, timeout: float = 30.0, interval: float = 0.05) -> None:
    """Call ``condition`` until it returns true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still not true after {timeout} seconds: {condition}"
        time.sleep(interval)


def expire_in_the_past(user, entries) -> None:
    """Make ``entries`` expire a minute ago: what waiting does, without racing the clock."""
    from pigeonhole.conf import get_backend

    ids = [entry.id for entry in entries]
    get_backend().expire(user.pk, ids, when=timezone.now() - timedelta(minutes=1))
