"""A site written for drf-messages: its README's URL configuration and a view adding messages."""

from django.contrib import messages
from django.http import HttpResponse
from django.urls import include, path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

import pigeonhole
from pigeonhole.compat import drf_messages


def add(request):
    messages.info(request, "Export ready")
    messages.error(request, "Export failed", extra_tags="export urgent")
    return HttpResponse("added")


@api_view(["POST"])
@permission_classes([IsAuthenticated])
def api_add(request):
    """An API view adding messages as drf-messages' users did, through DRF's request."""
    messages.info(request, "Export ready")
    drf_messages.create_message(request, "Saved", messages.SUCCESS)
    return Response({"added": 2})


@api_view(["POST"])
@permission_classes([IsAuthenticated])
def api_add_sticky(request):
    messages.add_message(request, pigeonhole.STICKY_INFO, "Stays until closed")
    return Response({"added": 1})


urlpatterns = [
    path("inbox/", include("pigeonhole.urls")),
    path("add/", add),
    path("api-add/", api_add),
    path("api-add-sticky/", api_add_sticky),
    path("messages/", include("pigeonhole.compat.drf_messages.urls")),
]
