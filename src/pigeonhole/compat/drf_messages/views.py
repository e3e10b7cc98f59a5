"""
drf-messages' endpoints, with its JSON.

A message is ``{id, message, level, level_tag, extra_tags, view, read_at,
created}`` (``extra_tags`` a list, ``view`` always ``""``); ``peek/`` answers
``{count, max_level, max_level_tag}``. Listing and retrieving no longer mark
messages read, since a GET must not change state: ``POST <id>/read/`` and
``POST read/`` do. A list holds the newest ``?limit=`` messages, at most the
REST API's largest page, or a page of ``DEFAULT_PAGINATION_CLASS`` when the
project sets one.
"""

from __future__ import annotations

from typing import Any

from ... import api
from ...exceptions import InvalidMessage, MessageNotFound
from ...message import StoredMessage, level_tag_for
from ...rest_framework.drf import (
    Request,
    Response,
    SimpleRouter,
    action,
    exceptions,
    permissions,
    safe_parser_classes,
    serializers,
    status,
    viewsets,
)
from ...rest_framework.schema import ID, document, error
from ...rest_framework.serializers import MAX_PAGE_SIZE
from ..rest import Entries, entry_id_from, limit_from

__all__ = ["MessageSerializer", "MessagesViewSet", "router"]

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


class MessageSerializer(serializers.Serializer):
    """One message in drf-messages' shape. Read-only: it describes the answers."""

    id = serializers.IntegerField()
    message = serializers.CharField()
    level = serializers.IntegerField()
    level_tag = serializers.CharField(allow_blank=True)
    extra_tags = serializers.ListField(child=serializers.CharField())
    view = serializers.CharField(allow_blank=True)
    read_at = serializers.DateTimeField(allow_null=True)
    created = serializers.DateTimeField(allow_null=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return message_to_dict(instance)


class ListQuerySerializer(serializers.Serializer):
    """The list's query parameters, for the schema."""

    unread = serializers.ChoiceField(choices=sorted(_TRUE | _FALSE), required=False)
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_PAGE_SIZE, required=False, help_text="Default: the maximum."
    )


class PeekSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=0)
    max_level = serializers.IntegerField(allow_null=True)
    max_level_tag = serializers.CharField(allow_blank=True)


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=0, help_text="How many messages were unread.")


class NoBody(serializers.Serializer):
    """What the POST routes take: nothing."""


_NOT_FOUND = {404: error("No such message in the user's inbox.")}


class MessagesViewSet(viewsets.GenericViewSet):
    """List, retrieve, delete and peek at the user's messages, newest first."""

    parser_classes = safe_parser_classes()
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = MessageSerializer

    def get_serializer_class(self) -> type[serializers.Serializer]:
        # OPTIONS (action "metadata") describes each method with the request's method swapped in.
        name = self.action_map.get(self.request.method.lower(), self.action)
        return NoBody if name in ("read", "read_all") else MessageSerializer

    def entry_id(self) -> int:
        found = entry_id_from(self.kwargs.get("pk", ""))
        if found is None:
            raise exceptions.NotFound()
        return found

    @document(parameters=[ListQuerySerializer], responses={200: MessageSerializer(many=True)})
    def list(self, request: Request) -> Response:
        unread = request.query_params.get("unread", "").lower()
        if unread and unread not in _TRUE | _FALSE:
            raise exceptions.ValidationError({"unread": ["Use true or false."]})
        state = "unread" if unread in _TRUE else "read" if unread in _FALSE else "all"
        entries = Entries(request.user, state)
        page = self.paginate_queryset(entries)
        if page is not None:
            return self.get_paginated_response([message_to_dict(m) for m in page])
        return Response([message_to_dict(message) for message in entries[: limit_from(request)]])

    @document(parameters=[ID], responses={200: MessageSerializer, **_NOT_FOUND})
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        try:
            message = api.get(request.user, self.entry_id())
        except MessageNotFound:
            raise exceptions.NotFound() from None
        return Response(message_to_dict(message))

    @document(parameters=[ID], responses={204: None, **_NOT_FOUND})
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

    @document(responses={200: PeekSerializer})
    @action(detail=False, methods=["get"])
    def peek(self, request: Request) -> Response:
        """Return the unread count and highest unread level without reading anything."""
        state = api.inbox_state(request.user)
        max_level = state.max_level
        return Response(
            {
                "count": state.unread,
                "max_level": max_level,
                "max_level_tag": level_tag_for(max_level) if max_level is not None else "",
            }
        )

    @document(
        request=None,
        parameters=[ID],
        responses={
            200: MessageSerializer,
            204: error("Read and deleted (DELETE_READ)."),
            **_NOT_FOUND,
        },
    )
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        """Mark one message read; return it."""
        entry_id = self.entry_id()
        try:
            api.mark_read(request.user, entry_id)
        except MessageNotFound:
            raise exceptions.NotFound() from None
        message = api.get(request.user, entry_id, strict=False)
        if message is None:
            # Marked read and deleted at once, as DELETE_READ asks.
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(message_to_dict(message))

    @document(operation_id="drf_messages_read_all", request=None, responses={200: CountSerializer})
    @action(detail=False, methods=["post"], url_path="read", url_name="read-all")
    def read_all(self, request: Request) -> Response:
        """Mark all the user's messages read; return how many were unread."""
        return Response({"count": api.mark_all_read(request.user)})


router = SimpleRouter()
router.register("", MessagesViewSet, basename="messages")
