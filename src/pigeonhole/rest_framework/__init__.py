"""
The REST API, on Django REST framework (the ``rest`` extra).

Mount it with ``path("api/", include("pigeonhole.rest_framework.urls"))``.
Everything goes through ``pigeonhole.api`` and the configured backend, so the
API behaves alike on every store, and only this package imports DRF.
"""

from django.core.exceptions import ImproperlyConfigured

try:
    import rest_framework  # noqa: F401
except ImportError as exc:  # pragma: no cover - the test environment has DRF
    raise ImproperlyConfigured(
        "pigeonhole.rest_framework and the stored_messages and drf_messages endpoints "
        "need Django REST framework: "
        'pip install "django-pigeonhole[rest]"'
    ) from exc
