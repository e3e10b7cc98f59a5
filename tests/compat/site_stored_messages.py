"""A site written for django-stored-messages: its README's code, with the imports changed."""

from django.contrib import messages
from django.http import HttpResponse
from django.template import engines
from django.urls import include, path

from pigeonhole.compat import stored_messages

TEMPLATE = "{% for message in messages %}{{ message.level }}|{{ message }}\n{% endfor %}"


def add(request):
    # standard message
    messages.add_message(request, messages.INFO, "Hello world.")
    # this will be persisted and marked as 'unread'
    messages.add_message(request, stored_messages.STORED_INFO, "Hello world, to the database!")
    return HttpResponse("added")


def add_through_api(request):
    stored_messages.add_message(request, stored_messages.INFO, "Hello!")
    return HttpResponse("added")


def show(request):
    storage = messages.get_messages(request)
    response = HttpResponse(engines["django"].from_string(TEMPLATE).render(request=request))
    if request.GET.get("keep"):
        storage.used = False
    return response


urlpatterns = [
    path("inbox/", include("pigeonhole.urls")),
    path("add/", add),
    path("add-api/", add_through_api),
    path("show/", show),
    path("stored_messages/", include("pigeonhole.compat.stored_messages.urls")),
]
