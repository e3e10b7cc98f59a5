"""
The views ``pigeonhole.urls`` mounts, one module per concern.

``actions`` changes a user's messages and streams or counts them, ``pages``
renders the inbox, and ``preferences`` the notification preferences and the
unsubscribe page. Every name ``actions`` exports is importable from here, as it
was when the views were one module: ``from pigeonhole.views import reply``.
"""

from . import actions
from .actions import *  # noqa: F403 - the state-changing views, each named in its __all__

__all__ = list(actions.__all__)
