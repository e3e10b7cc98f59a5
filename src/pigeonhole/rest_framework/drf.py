"""
The Django REST framework names code outside this package uses, imported once.

Only ``pigeonhole.rest_framework`` imports DRF: stored_messages' and
drf-messages' endpoints take what they need from here, so a missing DRF raises
the package's ``ImproperlyConfigured``, with its install line, for them too.
"""

from rest_framework import exceptions, permissions, serializers, status, viewsets
from rest_framework.decorators import action, api_view, parser_classes, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from .parsers import safe_parser_classes

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
