"""
Mount with ``path("messages/", include("pigeonhole.urls"))``.

Every URL here changes state and accepts POST only, except the inbox page,
``stream`` and ``count``, which read it (GET), and the preferences and
unsubscribe pages, which also answer GET.
"""

from django.urls import path

from . import views
from .views import pages, preferences

app_name = "pigeonhole"

urlpatterns = [
    path("", pages.inbox, name="inbox"),
    path("bulk/", views.bulk, name="bulk"),
    path("<int:entry_id>/reply/", views.reply, name="reply"),
    path("read-all/", views.mark_all_read, name="read_all"),
    path("stream/", views.stream, name="stream"),
    path("count/", views.count, name="count"),
    path("sticky/<str:sticky_id>/close/", views.close_sticky, name="close_sticky"),
    path("preferences/", preferences.preferences, name="preferences"),
    path("unsubscribe/<str:token>/", preferences.unsubscribe, name="unsubscribe"),
    *(
        path(f"<int:entry_id>/{action}/", views.change_view, {"action": action}, name=action)
        for action in ("read", "unread", "archive", "unarchive", "delete", "save", "unsave")
    ),
    path("<int:entry_id>/mute/", views.mute_view, {"muted": True}, name="mute"),
    path("<int:entry_id>/unmute/", views.mute_view, {"muted": False}, name="unmute"),
]
