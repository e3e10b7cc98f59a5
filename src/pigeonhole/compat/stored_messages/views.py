"""
The library's REST endpoints, with its JSON: ``[{id, message, level, tags, date, url}]``.

``tags`` is the message's extra tags, as the library stored them, and ``id``
is the inbox entry's id, the one ``inbox/<id>/read/`` takes. The list holds the
newest ``?limit=`` unread messages, at most the REST API's largest page.
"""

from __future__ import annotations

from typing import Any

from ... import api
from ...exceptions import MessageNotFound
from ...message import StoredMessage
from ...rest_framework.drf import (
    Request,
    Response,
    SimpleRouter,
    action,
    api_view,
    parser_classes,
    permission_classes,
    permissions,
    safe_parser_classes,
    viewsets,
)
from ..rest import Entries, entry_id_from, limit_from

__all__ = ["InboxViewSet", "mark_all_read", "router"]


def _as_dict(message: StoredMessage) -> dict[str, Any]:
    return {
        "id": str(message.id),
        "message": str(message.message),
        "level": message.level,
        "tags": message.extra_tags,
        "date": message.created.isoformat() if message.created else None,
        "url": message.url or None,
    }


def _not_found(pk: Any) -> Response:
    return Response(f"Message with id {pk} does not exist", status=404)


class InboxViewSet(viewsets.ViewSet):
    """The user's unread messages; ``read`` marks one read."""

    parser_classes = safe_parser_classes()

    def get_permissions(self) -> list[permissions.BasePermission]:
        # Listing answers [] to anonymous users, as the library did; changes need a login.
        if self.action in ("list", "retrieve"):
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated()]

    def list(self, request: Request) -> Response:
        if not request.user.is_authenticated:
            return Response([])
        entries = Entries(request.user, "unread")[: limit_from(request)]
        return Response([_as_dict(message) for message in entries])

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        entry_id = entry_id_from(pk)
        if not request.user.is_authenticated or entry_id is None:
            return _not_found(pk)
        try:
            message = api.get(request.user, entry_id)
        except MessageNotFound:
            return _not_found(pk)
        return Response(_as_dict(message))

    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        """Mark the message read."""
        entry_id = entry_id_from(pk)
        if entry_id is None:
            return _not_found(pk)
        try:
            api.mark_read(request.user, entry_id)
        except MessageNotFound:
            return _not_found(pk)
        return Response({"status": "message marked as read"})


@api_view(["POST"])
@parser_classes(safe_parser_classes())
@permission_classes([permissions.IsAuthenticated])
def mark_all_read(request: Request) -> Response:
    """Mark all the user's messages read."""
    api.mark_all_read(request.user)
    return Response({"message": "All messages read"})


router = SimpleRouter()
router.register("inbox", InboxViewSet, basename="inbox")
