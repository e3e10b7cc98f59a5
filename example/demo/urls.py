from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views
from .accounts import DEMO_ACCOUNTS

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(extra_context={"accounts": DEMO_ACCOUNTS}),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # POST only
    path("messages/", include("pigeonhole.urls")),
    path("admin/", admin.site.urls),
]
