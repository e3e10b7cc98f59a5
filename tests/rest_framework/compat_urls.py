"""The drf-messages compatibility endpoints with a schema of their own, for schemathesis."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("compat/drf_messages/", include("pigeonhole.compat.drf_messages.urls")),
    path("compat/schema/", SpectacularAPIView.as_view(), name="schema"),
]
