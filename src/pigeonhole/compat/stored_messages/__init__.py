"""
django-stored-messages on pigeonhole.

``import stored_messages`` becomes
``from pigeonhole.compat import stored_messages``; the rest reads as before::

    stored_messages.add_message(request, stored_messages.STORED_INFO, "Hello!")
    stored_messages.add_message_for(users, stored_messages.STORED_INFO, "Hi all")
    stored_messages.mark_read(request.user, message)

Like the library it also carries Django's ``messages`` API and levels.
"""

from __future__ import annotations

from ... import api as _pigeonhole_api
from .. import django_messages
from ..django_messages import *  # noqa: F403 - Django's messages API, as the library carried it
from . import api, constants
from .api import *  # noqa: F403 - the library's functions, re-exported as it did
from .constants import *  # noqa: F403 - the library's names, re-exported as it did

__all__ = [
    *constants.__all__,
    *api.__all__,
    *django_messages.__all__,
    "add_message",
    "api",
    "constants",
]

add_message = _pigeonhole_api.add_message
