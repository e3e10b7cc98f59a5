"""
OpenAPI annotations, when drf-spectacular is installed.

The schema is optional: without drf-spectacular the decorators below do
nothing and the API works the same, so a missing library costs only the schema.
"""

from __future__ import annotations

from typing import Any

try:
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import (
        OpenApiParameter,
        OpenApiResponse,
        extend_schema,
        extend_schema_field,
        extend_schema_serializer,
    )
except ImportError:  # drf-spectacular is optional; see the module docstring.
    OpenApiTypes = OpenApiParameter = OpenApiResponse = None

    def extend_schema(*args: Any, **kwargs: Any):  # type: ignore[no-redef]
        return lambda view: view

    def extend_schema_field(*args: Any, **kwargs: Any):  # type: ignore[no-redef]
        return lambda field: field

    def extend_schema_serializer(*args: Any, **kwargs: Any):  # type: ignore[no-redef]
        return lambda serializer: serializer


__all__ = [
    "ERRORS",
    "ID",
    "NOT_MODIFIED",
    "document",
    "error",
    "extend_schema_field",
    "extend_schema_serializer",
]


def error(description: str) -> Any:
    """Return an error response: ``{"detail": ...}`` or ``{"field": ["..."]}``."""
    if OpenApiResponse is None:
        return None
    return OpenApiResponse(response=OpenApiTypes.OBJECT, description=description)


def document(**kwargs: Any):
    """``extend_schema`` with the responses every endpoint shares."""
    if OpenApiResponse is None:
        return lambda view: view
    responses = dict(kwargs.pop("responses", {}))
    for status, description in ERRORS.items():
        responses.setdefault(status, error(description))
    return extend_schema(responses=responses, **kwargs)


ERRORS = {
    400: "Invalid input; the body names each field at fault.",
    401: "Not authenticated (with authentication schemes that challenge).",
    403: "Not authenticated, or not allowed.",
    429: "Throttled.",
}

ID = (
    OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Entry id.")
    if OpenApiParameter is not None
    else None
)
NOT_MODIFIED = (
    OpenApiResponse(description="Not modified since the ETag or date the client sent.")
    if OpenApiResponse is not None
    else None
)
