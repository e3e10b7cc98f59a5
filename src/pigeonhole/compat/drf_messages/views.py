"""
drf-messages' endpoints, with its JSON.

A message is ``{id, message, level, level_tag, extra_tags, view, read_at,
created}`` (``extra_tags`` a list, ``view`` always ``""``); ``peek/`` answers
``{count, max_level, max_level_tag}``. Listing and retrieving no longer mark
messages read, since a GET must not change state: ``POST <id>/read/`` and
``POST read/`` do.
"""

from __future__ import annotations

from typing import Any

from ... import api
from ...conf import get_backend
from ...exceptions import InvalidMessage, MessageNotFound
from ...message import StoredMessage, level_tag_for
from ..drf import (
    Request,
    Response,
    SimpleRouter,
    action,
    exceptions,
    permissions,
    safe_parser_classes,
    status,
    viewsets,
)

__all__ = ["MessagesViewSet", "router"]

_PAGE = 1000
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def message_to_dict(message: StoredMessage) -> dict[str, Any]:
    """Return ``message`` in drf-messages' shape."""
    return {
        "id": message.id,
        "message": str(message.message),
        "level": message.level,
        "level_tag": message.level_tag,
        "extra_tags": message.extra_tags.split() if message.extra_tags else [],
        "view": "",
        "read_at": message.read_at.isoformat() if message.read_at else None,
        "created": message.created.isoformat() if message.created else None,
    }


class MessagesViewSet(viewsets.GenericViewSet):
    """List, retrieve, delete and peek at the user's messages, newest first."""

    parser_classes = safe_parser_classes()
    permission_classes = [permissions.IsAuthenticated]

    def entries(self, state: str) -> list[StoredMessage]:
        found: list[StoredMessage] = []
        while True:
            after = found[-1].id if found else None
            page = api.inbox(self.request.user, state=state, limit=_PAGE, after=after)
            found.extend(page)
            if len(page) < _PAGE:
                return found

    def entry_id(self) -> int:
        pk = str(self.kwargs.get("pk", ""))
        if not pk.isdigit():
            raise exceptions.NotFound()
        return int(pk)

    def list(self, request: Request) -> Response:
        unread = request.query_params.get("unread", "").lower()
        if unread and unread not in _TRUE | _FALSE:
            raise exceptions.ValidationError({"unread": ["Use true or false."]})
        if unread in _TRUE:
            found = self.entries("unread")
        else:
            found = self.entries("all")
            if unread in _FALSE:
                found = [message for message in found if message.is_read]
        page = self.paginate_queryset(found)
        if page is not None:
            return self.get_paginated_response([message_to_dict(m) for m in page])
        return Response([message_to_dict(message) for message in found])

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        try:
            message = get_backend().get(request.user.pk, self.entry_id())
        except MessageNotFound:
            raise exceptions.NotFound() from None
        return Response(message_to_dict(message))

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        try:
            api.delete(request.user, self.entry_id())
        except MessageNotFound:
            raise exceptions.NotFound() from None
        except InvalidMessage:
            raise exceptions.PermissionDenied(
                "You do not have the permission to delete unread messages"
            ) from None
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=False, methods=["get"])
    def peek(self, request: Request) -> Response:
        """Return the unread count and highest unread level without reading anything."""
        state = get_backend().state(request.user.pk)
        max_level = state.max_level
        return Response(
            {
                "count": state.unread,
                "max_level": max_level,
                "max_level_tag": level_tag_for(max_level) if max_level is not None else "",
            }
        )

    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        """Mark one message read; return it."""
        entry_id = self.entry_id()
        try:
            api.mark_read(request.user, entry_id)
        except MessageNotFound:
            raise exceptions.NotFound() from None
        try:
            message = get_backend().get(request.user.pk, entry_id)
        except MessageNotFound:
            # Marked read and deleted at once, as DELETE_READ asks.
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(message_to_dict(message))

    @action(detail=False, methods=["post"], url_path="read", url_name="read-all")
    def read_all(self, request: Request) -> Response:
        """Mark all the user's messages read; return how many were unread."""
        return Response({"count": api.mark_all_read(request.user)})


router = SimpleRouter()
router.register("", MessagesViewSet, basename="messages")
