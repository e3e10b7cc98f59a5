"""Views the storage tests drive through the real middleware stack."""

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.template import engines

import pigeonhole

TEMPLATE = """{% for message in messages %}<li class="{{ message.tags }}">{{ message }}</li>
{% endfor %}"""

LEVELS = {
    "info": messages.INFO,
    "persistent": pigeonhole.PERSISTENT_INFO,
    "persistent_error": pigeonhole.PERSISTENT_ERROR,
    "sticky": pigeonhole.STICKY_WARNING,
}


def add(request, kind):
    for text in request.POST.getlist("messages"):
        messages.add_message(request, LEVELS[kind], text)
    return HttpResponseRedirect("/show/")


#: The alerts tag, whole (``?alerts=all``) and as the demo's base template uses it, stored
#: messages left out (``?alerts=flash``).
ALERTS = {
    "all": "{% load pigeonhole %}{% pigeonhole_messages %}",
    "flash": "{% load pigeonhole %}{% pigeonhole_messages persistent=False %}",
    # A site's base template: the badge beside the flash messages.
    "badge": (
        "{% load pigeonhole %}<b>{% pigeonhole_unread_count %}</b>"
        "{% pigeonhole_messages persistent=False %}"
    ),
}


def show(request):
    """Show the messages; ``?add=text`` first adds a plain one on this very request."""
    for text in request.GET.getlist("add"):
        messages.success(request, text)
    template = engines["django"].from_string(ALERTS.get(request.GET.get("alerts", ""), TEMPLATE))
    response = HttpResponse(template.render(request=request))
    if request.GET.get("keep"):
        messages.get_messages(request).used = False
    return response


def nothing(request):
    return HttpResponse("nothing to see")
