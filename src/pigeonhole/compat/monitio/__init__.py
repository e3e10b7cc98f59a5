"""
django-monitio on pigeonhole.

``import monitio`` becomes ``from pigeonhole.compat import monitio``; the
functions keep monitio's signatures::

    monitio.add_message(request, monitio.WARNING, "Stored till removed.")
    monitio.info(request, "Hi Sally", subject="Success message", user=sally)
    monitio.create_message(sally, monitio.INFO, "From a task")

Its levels (120, ...) are stored as pigeonhole's persistent levels (21, ...),
so a stored message reads back with ``level == 21`` and ``level_tag == "info"``.
``sse=`` is accepted and ignored: pigeonhole delivers every stored message live.
"""

from __future__ import annotations

from . import api, constants
from .api import *  # noqa: F403 - the library's functions, re-exported as it did
from .constants import *  # noqa: F403 - the library's names, re-exported as it did

__all__ = [*constants.__all__, *api.__all__, "api", "constants"]
