"""
``path("stored_messages/", include("pigeonhole.compat.stored_messages.urls"))``.

The library's names in its ``stored_messages`` namespace: ``inbox-list``
(``inbox/``), ``inbox-detail``, ``inbox-read`` (``inbox/<id>/read/``, POST) and
``mark_all_read`` (POST). Needs Django REST framework, as the library did.
"""

from django.urls import path

from . import views

app_name = "stored_messages"

urlpatterns = [
    *views.router.urls,
    path("mark_all_read/", views.mark_all_read, name="mark_all_read"),
]
