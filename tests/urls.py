from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from tests.testapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("messages/", include("pigeonhole.urls")),
    path("api/", include("pigeonhole.rest_framework.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("add/<str:kind>/", views.add, name="test-add"),
    path("show/", views.show, name="test-show"),
    path("nothing/", views.nothing, name="test-nothing"),
]
