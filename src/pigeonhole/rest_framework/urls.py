"""
Mount with ``path("api/", include("pigeonhole.rest_framework.urls"))``.

URL names live in the ``pigeonhole_api`` namespace: ``pigeonhole_api:message-list``,
``message-detail``, ``message-count``, ``message-read``, ``message-read-all``, ...
"""

from rest_framework.routers import SimpleRouter

from .views import MessageViewSet

app_name = "pigeonhole_api"

router = SimpleRouter()
router.register("messages", MessageViewSet, basename="message")

urlpatterns = router.urls
