"""
ASGI entry point for the demo site: ``python3 dev.py demo`` serves it with uvicorn.

Under ASGI the inbox streams its updates (Server-Sent Events); one process holds the
in-memory broker, so a message sent from one tab reaches every other tab at once. The
streams are served on the event loop by ``pigeonhole.asgi.live_streams``, as docs/live.md
advises a site to serve them. Static files are served here too, as ``runserver`` would,
since this is a demo.
"""

import os

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

from pigeonhole.asgi import live_streams

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

application = live_streams(get_asgi_application())
if settings.DEBUG:
    application = ASGIStaticFilesHandler(application)
