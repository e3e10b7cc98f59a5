"""
``path("messages/", include("pigeonhole.compat.monitio.urls"))``.

monitio's URL names, without a namespace as it had none:
``message_mark_read``, ``message_mark_all_read``, ``message_delete``,
``message_delete_all`` (POST only) and ``message_json``. Its ``sse/`` view is
replaced by pigeonhole's own stream (``pigeonhole:stream``).
"""

from django.urls import path

from .. import views
from .views import messages_json

urlpatterns = [
    path("mark_read/<int:message_id>/", views.message_mark_read, name="message_mark_read"),
    path("mark_read/all/", views.message_mark_all_read, name="message_mark_all_read"),
    path("delete/message/<int:message_id>/", views.message_delete, name="message_delete"),
    path("delete/all/", views.message_delete_all, name="message_delete_all"),
    path("json/", messages_json, name="message_json"),
]
