"""
The Django REST framework names the compatibility endpoints use, imported once.

stored_messages' and drf-messages' endpoints need DRF, as those libraries did;
without it, mounting them raises ``ImproperlyConfigured`` with the install line.
"""

from django.core.exceptions import ImproperlyConfigured

try:
    from rest_framework import exceptions, permissions, serializers, status, viewsets
    from rest_framework.decorators import action, api_view, parser_classes, permission_classes
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.routers import SimpleRouter
except ImportError as exc:  # pragma: no cover - the test environment has DRF
    raise ImproperlyConfigured(
        "The stored_messages and drf_messages endpoints need Django REST framework: "
        'pip install "django-pigeonhole[rest]"'
    ) from exc

from ..rest_framework.parsers import safe_parser_classes

__all__ = [
    "Request",
    "Response",
    "SimpleRouter",
    "action",
    "api_view",
    "exceptions",
    "parser_classes",
    "permission_classes",
    "permissions",
    "safe_parser_classes",
    "serializers",
    "status",
    "viewsets",
]
