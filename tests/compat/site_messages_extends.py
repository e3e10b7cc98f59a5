"""A site written for django-messages-extends: its README's code, with the imports changed."""
# ruff: noqa: E501, RUF001, UP031 - the README's code and template, kept as written

from django.contrib import messages as django_messages
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.template import engines
from django.urls import include, path

from pigeonhole.compat import messages_extends as messages
from pigeonhole.compat.messages_extends import constants as constants_messages

User = get_user_model()

# The README's template, with the URL name quoted as current Django requires.
TEMPLATE = """{% for message in messages %}
    <div class="alert {% if message.tags %} alert-{{ message.tags }} {% endif %}">
        <a class="close" data-dismiss="alert"{% if message.pk %} close-href="{% url "message_mark_read" message.pk %}"{% endif %}>×</a>
        {{ message }}
    </div>
{% endfor %}"""

# The README's bundled template and script, instead of the template above.
BUNDLED = """{% load static %}<!doctype html><html><head><title>Alerts</title></head><body>
{% include "messages_extends/includes/alerts_bootstrap.html" %}
<script src="{% static "close-alerts.js" %}"></script>
</body></html>"""


def add(request):
    messages.add_message(request, messages.INFO, "Hello world.")
    messages.add_message(
        request,
        constants_messages.WARNING_PERSISTENT,
        "You are going to see this message until you mark it as read.",
    )
    messages.add_persistant_error(request, "Houston we have a problem..")
    messages.add_message(
        request,
        constants_messages.WARNING_STICKY,
        "You will going to see this messages only in this request",
    )
    return HttpResponse("added")


def to_sally(request):
    sally = User.objects.get(username="bob")
    messages.add_message(
        request, constants_messages.INFO_PERSISTENT, "Hola abc desde %s" % request.user, user=sally
    )
    return HttpResponse("sent")


def show(request):
    return HttpResponse(engines["django"].from_string(TEMPLATE).render(request=request))


def bundled(request):
    return HttpResponse(engines["django"].from_string(BUNDLED).render(request=request))


def sticky(request):
    # The README's own call: Django's API, the library's level.
    django_messages.add_message(request, constants_messages.WARNING_STICKY, "Only this request")
    django_messages.add_message(request, constants_messages.INFO, "Until shown")
    return show(request) if "show" in request.GET else HttpResponse("added")


urlpatterns = [
    path("inbox/", include("pigeonhole.urls")),
    path("add/", add),
    path("to-sally/", to_sally),
    path("show/", show),
    path("bundled/", bundled),
    path("sticky/", sticky),
    path("messages/", include("pigeonhole.compat.messages_extends.urls")),
]
