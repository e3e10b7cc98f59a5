"""
Receivers that keep the store in step with the rest of the site.

Connected in ``PigeonholeConfig.ready()``, never at import time.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from . import service
from .exceptions import BackendUnavailable

__all__ = ["forget_deleted_user"]

logger = logging.getLogger("pigeonhole")


def forget_deleted_user(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
    """
    Delete a deleted user's entries from a store the database cannot cascade into.

    It waits for the deletion to commit, since a rolled-back deletion leaves the
    user, and their messages, in place. If the store is down the entries stay
    behind, logged with the call that removes them later.
    """
    backend = service.store()
    if backend.forgets_with_user:
        return
    user_id = instance.pk

    def forget() -> None:
        try:
            backend.forget_user(user_id)
        except BackendUnavailable:
            logger.exception(
                "Could not delete the messages of deleted user %s; run "
                "pigeonhole.conf.get_backend().forget_user(%r) once the store is back.",
                user_id,
                user_id,
            )

    transaction.on_commit(forget, using=using)
