"""
The messages viewset: one user's inbox over HTTP.

Every route acts on ``request.user``'s entries alone, through ``pigeonhole.api``
and the configured backend, so it behaves the same on every store. Another
user's id answers 404 like an id that never existed: a 403 would confirm it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from django.utils.cache import get_conditional_response, patch_vary_headers
from django.utils.http import http_date
from rest_framework import exceptions, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from .. import api
from ..backends.base import InboxState
from ..conf import pigeonhole_settings
from ..exceptions import BackendUnavailable, InvalidMessage, MessageNotFound
from ..message import StoredMessage
from ..representation import count_to_dict, senders_for
from . import serializers
from .parsers import safe_parser_classes
from .schema import ID, NOT_MODIFIED, document, error

__all__ = ["CanSendMessages", "MessageViewSet"]


class CanSendMessages(permissions.BasePermission):
    """Allow sending to holders of the ``pigeonhole.add_message`` permission."""

    message = "Sending messages needs the pigeonhole.add_message permission."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.has_perm("pigeonhole.add_message"))


def _not_found(entry_id: object) -> exceptions.NotFound:
    return exceptions.NotFound(f"No message {entry_id} in your inbox.")


#: What a change of one entry answers: the entry as it is now.
_CHANGED = {
    200: serializers.MessageSerializer,
    204: error("Marked read and deleted at once, as DELETE_READ asks."),
    404: error("No such message in the user's inbox."),
}
#: What muting or unmuting the thread of an entry answers.
_MUTED = {
    200: serializers.MutedSerializer,
    400: error("The message is in no thread."),
    404: error("No such message in the user's inbox."),
}


def _entry_action(
    name: str,
    answer: Callable[[MessageViewSet, Callable[..., object]], Response],
    func: Callable[..., object],
    responses: dict[int, object],
    doc: str,
) -> Callable[..., Response]:
    """
    Return the action ``POST messages/{id}/<name>/``: ``answer(view, func)``.

    The single-entry changes differ only in these; ``answer`` applies ``func``
    to the entry in the URL and renders the result. DRF routes by ``name``.
    """

    def view(self: MessageViewSet, request: Request, id: str) -> Response:
        return answer(self, func)

    view.__name__ = view.__qualname__ = name
    view.__doc__ = doc
    routed = action(detail=True, methods=["post"])(view)
    return document(request=None, parameters=[ID], responses=responses)(routed)


class MessageViewSet(viewsets.ViewSet):
    """
    List, read, change, delete, answer and send messages.

    Customise through class attributes in a subclass: ``page_size`` and
    ``max_page_size``, ``permission_classes``, ``throttle_scope`` (``"pigeonhole"``,
    for DRF's ``ScopedRateThrottle``), and ``send_permission_classes``.
    """

    lookup_field = "id"
    parser_classes = safe_parser_classes()
    permission_classes = [permissions.IsAuthenticated]
    send_permission_classes = [permissions.IsAuthenticated, CanSendMessages]
    throttle_scope = "pigeonhole"
    #: Entries per page unless the client asks for ``page_size``.
    page_size = 20
    #: The most a client may ask for; more is a 400, not a silent cut.
    max_page_size = serializers.MAX_PAGE_SIZE

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action == "create":
            return [permission() for permission in self.send_permission_classes]
        return super().get_permissions()

    def handle_exception(self, exc: Exception) -> Response:
        # The API's own errors, raised below the view, become HTTP answers here.
        if isinstance(exc, MessageNotFound):
            exc = exceptions.NotFound("No such message in your inbox.")
        elif isinstance(exc, InvalidMessage):
            exc = exceptions.ValidationError({"non_field_errors": [str(exc)]})
        elif isinstance(exc, BackendUnavailable):
            retry_after = exc.retry_after
            exc = exceptions.APIException("The message store is unavailable; try again later.")
            exc.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
            exc.wait = retry_after  # DRF sends it as Retry-After
        return super().handle_exception(exc)

    # Helpers ----------------------------------------------------------------
    def entry_id(self) -> int:
        """Return the id in the URL, or answer 400 if it is not one."""
        field = serializers.IdField()
        try:
            return field.run_validation(self.kwargs[self.lookup_field])
        except exceptions.ValidationError as exc:
            raise exceptions.ValidationError({"id": exc.detail}) from exc

    def get_state(self) -> InboxState:
        return api.inbox_state(self.request.user)

    def render(self, entries: list[StoredMessage]) -> list[dict[str, Any]]:
        context = {"senders": senders_for(entries)}
        return serializers.MessageSerializer(entries, many=True, context=context).data

    def conditional(
        self, state: InboxState, *parts: object
    ) -> tuple[dict[str, str], HttpResponse | None]:
        """
        Return validators for a response built from ``state`` and ``parts``.

        Also return a 304 answer when the client's copy is current, so the
        caller can stop before it loads a single message.
        """
        headers = {
            "X-Poll-Interval": str(pigeonhole_settings.POLL_INTERVAL),
            "Cache-Control": "private, no-cache",
        }
        if state.version is None:
            return headers, None
        key = "|".join(map(str, (self.request.user.pk, *parts)))
        headers["ETag"] = f'"{hashlib.sha256(key.encode()).hexdigest()[:32]}"'
        last_modified = None
        if state.modified is not None:
            last_modified = int(state.modified.timestamp())
            headers["Last-Modified"] = http_date(last_modified)
        answer = get_conditional_response(
            self.request, etag=headers["ETag"], last_modified=last_modified
        )
        if answer is not None:
            for name, value in headers.items():
                answer[name] = value
            patch_vary_headers(answer, ("Cookie", "Authorization"))
        return headers, answer

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any):
        response = super().finalize_response(request, response, *args, **kwargs)
        # Answers differ per user: caches must not share them.
        patch_vary_headers(response, ("Cookie", "Authorization"))
        return response

    def changed(self, count: int) -> Response:
        data = {"changed": count, "unread": api.unread_count(self.request.user)}
        return Response(serializers.ChangedSerializer(data).data)

    def entry_response(self, entry_id: int) -> Response:
        entry = api.get(self.request.user, entry_id, strict=False)
        if entry is None:
            # DELETE_READ removed it as it was read.
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(self.render([entry])[0])

    # Reading ----------------------------------------------------------------
    @document(
        parameters=[serializers.ListQuerySerializer],
        responses={200: serializers.MessagePageSerializer, 304: NOT_MODIFIED},
    )
    def list(self, request: Request) -> Response:
        """List the user's messages, newest first, a page at a time."""
        query = serializers.ListQuerySerializer(
            data=request.query_params, context={"max_page_size": self.max_page_size}
        )
        query.is_valid(raise_exception=True)
        params = query.validated_data
        state = self.get_state()
        headers, not_modified = self.conditional(state, state.version, request.build_absolute_uri())
        if not_modified is not None:
            return not_modified
        size = params.get("page_size", self.page_size)
        entries = api.inbox(
            request.user,
            state=params["state"],
            level=params.get("level"),
            tag=params.get("tag"),
            since=params.get("since"),
            before=params.get("before"),
            limit=size + 1,
            after=params.get("cursor"),
            reason=params.get("reason"),
        )
        page, more = entries[:size], len(entries) > size
        next_url = None
        if more:
            next_url = replace_query_param(request.build_absolute_uri(), "cursor", page[-1].id)
        return Response({"next": next_url, "results": self.render(page)}, headers=headers)

    @document(parameters=[ID], responses={200: serializers.MessageSerializer, 404: error("")})
    def retrieve(self, request: Request, id: str) -> Response:
        """Return one message."""
        entry_id = self.entry_id()
        try:
            entry = api.get(request.user, entry_id)
        except MessageNotFound:
            raise _not_found(entry_id) from None
        return Response(self.render([entry])[0])

    @document(responses={200: serializers.CountSerializer, 304: NOT_MODIFIED})
    @action(detail=False, methods=["get"])
    def count(self, request: Request) -> Response:
        """Return the unread count and the highest unread level, for a badge."""
        state = self.get_state()
        data = count_to_dict(state)
        # The answer is the whole state it depends on: reads elsewhere don't matter.
        headers, not_modified = self.conditional(state, "count", *data.values())
        if not_modified is not None:
            return not_modified
        return Response(serializers.CountSerializer(data).data, headers=headers)

    # Changing state ---------------------------------------------------------
    def change(self, func: Callable[..., object]) -> Response:
        entry_id = self.entry_id()
        try:
            func(self.request.user, entry_id)
        except MessageNotFound:
            raise _not_found(entry_id) from None
        return self.entry_response(entry_id)

    read = _entry_action(
        "read",
        change,
        api.mark_read,
        _CHANGED,
        "Mark a message read; return it as it is now.",
    )
    unread = _entry_action(
        "unread",
        change,
        api.mark_unread,
        _CHANGED,
        'Mark a message unread again ("remind me later").',
    )
    archive = _entry_action(
        "archive",
        change,
        api.archive,
        _CHANGED,
        "Move a message out of the inbox, keeping its read state.",
    )
    unarchive = _entry_action(
        "unarchive",
        change,
        api.unarchive,
        _CHANGED,
        "Bring an archived message back to the inbox.",
    )
    save = _entry_action(
        "save",
        change,
        api.save,
        _CHANGED,
        "Save a message: listed under state=saved, kept by purges, not deletable.",
    )
    unsave = _entry_action("unsave", change, api.unsave, _CHANGED, "Unsave a message.")

    def set_muted(self, func: Callable[..., object]) -> Response:
        entry_id = self.entry_id()
        try:
            entry = api.get(self.request.user, entry_id)
        except MessageNotFound:
            raise _not_found(entry_id) from None
        func(self.request.user, entry)
        data = {"thread": entry.thread, "muted": func is api.mute}
        return Response(serializers.MutedSerializer(data).data)

    mute = _entry_action(
        "mute",
        set_muted,
        api.mute,
        _MUTED,
        "Mute the message's thread: later messages in it do not reach the user.",
    )
    unmute = _entry_action("unmute", set_muted, api.unmute, _MUTED, "Unmute the message's thread.")

    @document(
        operation_id="messages_seen",
        request=serializers.SeenSerializer,
        responses={200: serializers.SeenAnswerSerializer},
    )
    @action(detail=False, methods=["post"], url_path="seen", url_name="seen")
    def seen(self, request: Request) -> Response:
        """
        Mark messages seen, up to ``before`` if given: the user has been shown them.

        Seen messages stay unread; they leave the unseen count a badge may show.
        """
        body = serializers.SeenSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        count = api.mark_seen(request.user, before=body.validated_data.get("before"))
        data = {"changed": count, "unseen": api.unseen_count(request.user)}
        return Response(serializers.SeenAnswerSerializer(data).data)

    @document(
        operation_id="messages_read_all",
        request=serializers.BulkReadSerializer,
        responses={200: serializers.ChangedSerializer},
    )
    @action(detail=False, methods=["post"], url_path="read", url_name="read-all")
    def read_all(self, request: Request) -> Response:
        """
        Mark messages read: the ``ids`` given, or all up to ``before``.

        ``before`` is the newest id (or creation time) the client has shown,
        so a message that arrived since stays unread.
        """
        body = serializers.BulkReadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if "ids" in body.validated_data:
            try:
                count = api.mark_read(request.user, body.validated_data["ids"])
            except MessageNotFound as exc:
                missing = ", ".join(map(str, exc.ids))
                raise exceptions.ValidationError(
                    {"ids": [f"No message {missing} in your inbox; nothing was changed."]}
                ) from None
        else:
            count = api.mark_all_read(request.user, before=body.validated_data["before"])
        return self.changed(count)

    @document(
        parameters=[ID],
        responses={
            204: None,
            403: error("Unread, and ALLOW_DELETE_UNREAD is off; or not authenticated."),
            404: error("No such message in the user's inbox."),
        },
    )
    def destroy(self, request: Request, id: str) -> Response:
        """Delete a message; an unread one only with ``ALLOW_DELETE_UNREAD``."""
        entry_id = self.entry_id()
        try:
            api.delete(request.user, entry_id)
        except MessageNotFound:
            raise _not_found(entry_id) from None
        except InvalidMessage as exc:
            raise exceptions.PermissionDenied(str(exc)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)

    # Writing ----------------------------------------------------------------
    @document(
        parameters=[ID],
        request=serializers.ReplySerializer,
        responses={201: serializers.SentSerializer, 404: error("No such message.")},
    )
    @action(detail=True, methods=["post"])
    def reply(self, request: Request, id: str) -> Response:
        """Answer a message: the reply goes to its sender, from the user."""
        entry_id = self.entry_id()
        body = serializers.ReplySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        options = dict(body.validated_data)
        text = options.pop("message")
        try:
            sent = api.reply(request.user, entry_id, text, **options)
        except MessageNotFound:
            raise _not_found(entry_id) from None
        return self.sent(sent)

    @document(
        request=serializers.SendSerializer,
        responses={201: serializers.SentSerializer},
    )
    def create(self, request: Request) -> Response:
        """Send a message to users and groups (needs ``pigeonhole.add_message``)."""
        body = serializers.SendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        options = dict(body.validated_data)
        to = [*options.pop("users", []), *options.pop("groups", [])]
        sent = api.send(to, options.pop("message"), from_user=request.user, **options)
        return self.sent(sent)

    def sent(self, sent: Any) -> Response:
        data = {"id": sent.id, "recipient_count": sent.recipient_count}
        return Response(serializers.SentSerializer(data).data, status=status.HTTP_201_CREATED)
