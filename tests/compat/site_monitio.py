"""A site written for django-monitio: its README's code, with the imports changed."""
# ruff: noqa: E501 - the README's template, kept as written

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.template import engines
from django.urls import include, path

from pigeonhole.compat import monitio as persistent_messages

User = get_user_model()

# The README's template (URL name quoted) and its storage extras.
TEMPLATE = """{% if messages %}
<ul class="messages">
    {% for message in messages %}
    <li{% if message.tags %} class="{{ message.tags }}"{% endif %}>
        {% if message.subject %}<strong>{{ message.subject }}</strong><br />{% endif %}
        {{ message.message }}<br />
        {% if message.is_persistent %}<a href="{% url "message_mark_read" message.pk %}">close</a>{% endif %}
    </li>
    {% endfor %}
</ul>
{% endif %}
<p id="unread">inbox {% if messages.count_persistent_unread > 0 %}({{ messages.count_persistent_unread }}){% endif %}</p>
<p id="nonpersistent">{{ messages.count_nonpersistent }}</p>"""


# The README's <head>: monitio's scripts, now pigeonhole's.
HEAD = """<head>{% include "monitio/header.html" %}</head>"""


def add(request):
    messages.add_message(request, messages.INFO, "Hello world.")
    persistent_messages.add_message(
        request,
        persistent_messages.WARNING,
        "This message is stored in persistent_messages table till removed",
    )
    persistent_messages.add_message(
        request, persistent_messages.INFO, "Message body", subject="Please read me", email=True
    )
    return HttpResponse("added")


def to_sally(request):
    sally = User.objects.get(username="bob")
    persistent_messages.add_message(
        request,
        persistent_messages.SUCCESS,
        "Hi Sally, here is a message to you.",
        subject="Success message",
        user=sally,
    )
    return HttpResponse("sent")


def show(request):
    return HttpResponse(engines["django"].from_string(TEMPLATE).render(request=request))


def head(request):
    return HttpResponse(engines["django"].from_string(HEAD).render(request=request))


urlpatterns = [
    path("inbox/", include("pigeonhole.urls")),
    path("add/", add),
    path("to-sally/", to_sally),
    path("show/", show),
    path("head/", head),
    path("messages/", include("pigeonhole.compat.monitio.urls")),
]
