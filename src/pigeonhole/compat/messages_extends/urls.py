"""
``path("messages/", include("pigeonhole.compat.messages_extends.urls"))``.

The library's URL names, without a namespace as it had none:
``message_mark_read`` (takes the message's ``pk``) and ``message_mark_all_read``.
Both take POST only.
"""

from django.urls import path

from .. import views

urlpatterns = [
    path("mark_read/<int:message_id>/", views.message_mark_read, name="message_mark_read"),
    path("mark_read/all/", views.message_mark_all_read, name="message_mark_all_read"),
]
