"""
Mount with ``path("api/", include("pigeonhole.rest_framework.urls"))``.

URL names live in the ``pigeonhole_api`` namespace: ``pigeonhole_api:message-list``,
``message-detail``, ``message-count``, ``message-read``, ``message-read-all``,
``message-seen``, ``message-save``, ``message-mute``, ..., ``preferences`` for the
user's notification preferences and ``export`` for all of their stored data.
"""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .preferences import ExportView, PreferencesView
from .views import MessageViewSet

app_name = "pigeonhole_api"

router = SimpleRouter()
router.register("messages", MessageViewSet, basename="message")

urlpatterns = [
    path("preferences/", PreferencesView.as_view(), name="preferences"),
    path("preferences/export/", ExportView.as_view(), name="export"),
    *router.urls,
]
