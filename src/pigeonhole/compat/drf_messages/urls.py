"""
``path("messages/", include("pigeonhole.compat.drf_messages.urls"))``.

drf-messages' names in its ``drf_messages`` namespace: ``messages-list``,
``messages-detail`` (GET, DELETE), ``messages-peek``, plus ``messages-read``
and ``messages-read-all`` (POST) to mark messages read.
"""

from . import views

app_name = "drf_messages"

urlpatterns = views.router.urls
