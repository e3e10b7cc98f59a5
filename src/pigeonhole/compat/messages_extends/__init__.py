"""
django-messages-extends on pigeonhole.

The library patched ``django.contrib.messages.add_message`` to accept
``user=`` and ``expires=``; pigeonhole patches nothing, so import this module
where the old code imported ``messages``::

    from pigeonhole.compat import messages_extends as messages

    messages.add_message(request, messages.INFO_PERSISTENT, "Hola", user=sally)
    messages.persistant_error(request, "Houston we have a problem..")

It also carries Django's ``messages`` API (``get_messages``, ``info``, ...).
"""

from __future__ import annotations

from django.http import HttpRequest

from ... import api
from ...message import StickyMessage, StoredMessage
from .. import django_messages
from ..django_messages import *  # noqa: F403 - Django's messages API, as the library carried it
from . import constants
from .constants import *  # noqa: F403 - the library's names, re-exported as it did

__all__ = [
    *constants.__all__,
    *django_messages.__all__,
    "add_message",
    "add_persistant_debug",
    "add_persistant_error",
    "add_persistant_info",
    "add_persistant_success",
    "add_persistant_warning",
    "persistant_debug",
    "persistant_error",
    "persistant_info",
    "persistant_success",
    "persistant_warning",
]


def add_message(
    request: HttpRequest,
    level: int,
    message: object,
    extra_tags: str = "",
    fail_silently: bool = False,
    *args: object,
    **kwargs: object,
) -> StoredMessage | StickyMessage | None:
    """
    Add a message, for another user with ``user=``, expiring at ``expires=``.

    The library's signature, passed on to ``pigeonhole.add_message``, which
    also takes pigeonhole's own options (``subject``, ``url``, ...).
    """
    if args:
        raise TypeError(
            "add_message() takes user= and expires= as keyword arguments only, "
            f"got {len(args)} extra positional argument(s)."
        )
    return api.add_message(request, level, message, extra_tags, fail_silently, **kwargs)


# The library's spelling, kept so existing calls work unchanged.
persistant_debug, persistant_info, persistant_success, persistant_warning, persistant_error = (
    api.level_shortcuts(
        add_message,
        constants.PERSISTENT_MESSAGE_LEVELS,
        "Add a persistent message with level {level}, kept until closed.",
        prefix="persistant_",
    )
)
# The names its README used (``messages.add_persistant_error``).
add_persistant_debug = persistant_debug
add_persistant_info = persistant_info
add_persistant_success = persistant_success
add_persistant_warning = persistant_warning
add_persistant_error = persistant_error
