from django.contrib import admin
from django.urls import include, path

from tests.testapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("messages/", include("pigeonhole.urls")),
    path("add/<str:kind>/", views.add, name="test-add"),
    path("show/", views.show, name="test-show"),
    path("nothing/", views.nothing, name="test-nothing"),
]
