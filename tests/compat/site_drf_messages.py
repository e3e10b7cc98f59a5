"""A site written for drf-messages: its README's URL configuration and a view adding messages."""

from django.contrib import messages
from django.http import HttpResponse
from django.urls import include, path


def add(request):
    messages.info(request, "Export ready")
    messages.error(request, "Export failed", extra_tags="export urgent")
    return HttpResponse("added")


urlpatterns = [
    path("inbox/", include("pigeonhole.urls")),
    path("add/", add),
    path("messages/", include("pigeonhole.compat.drf_messages.urls")),
]
