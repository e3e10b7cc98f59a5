"""
Serializers: the shape of a message on the wire, and the input each endpoint takes.

A message is rendered by ``representation.message_to_dict``, the same function
the event stream uses, so the two never drift apart. The fields declared on
``MessageSerializer`` describe that shape for the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from ..backends.base import STATES
from ..exceptions import InvalidMessage
from ..representation import message_to_dict
from ..validation import (
    check_data_limits,
    check_datetime,
    check_storable,
    check_tags,
    check_text,
    check_url,
)
from .schema import extend_schema_field, extend_schema_serializer

__all__ = [
    "BulkReadSerializer",
    "CountSerializer",
    "ListQuerySerializer",
    "MessagePageSerializer",
    "MessageSerializer",
    "ReplySerializer",
    "SendSerializer",
    "SenderSerializer",
]

#: The largest id any supported database stores: bigger numbers are not ids,
#: and passing them on would overflow a database column instead of a 404.
MAX_ID = 2**63 - 1
#: The default largest page; ``MessageViewSet.max_page_size`` sets it per view.
MAX_PAGE_SIZE = 100
#: Levels are stored in a 32-bit column.
MAX_LEVEL = 2**31 - 1

_T = TypeVar("_T")
_R = TypeVar("_R")


def _check(check: Callable[..., _R], *args: Any) -> _R:
    """
    Run one of ``pigeonhole.validation``'s checks and return what it returns.

    Its ``InvalidMessage`` becomes the field's 400, with the same words the
    Python API uses, so both refuse alike.
    """
    try:
        return check(*args)
    except InvalidMessage as exc:
        raise serializers.ValidationError(str(exc)) from exc


def _storable(value: _T) -> _T:
    """
    Refuse text no store keeps (``check_storable``): a 400, not a server error.

    ``value`` may be nested JSON.
    """
    return _check(check_storable, value, "text")


class IdField(serializers.IntegerField):
    """An inbox entry id: a positive integer a database can hold."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class SenderSerializer(serializers.Serializer):
    """Who sent a message: enough to show a name, nothing private."""

    id = serializers.IntegerField()
    username = serializers.CharField(allow_null=True)
    name = serializers.CharField(allow_null=True)


class MessageSerializer(serializers.Serializer):
    """
    One inbox entry as the requesting user sees it. Read-only.

    Pass ``context={"senders": representation.senders_for(messages)}`` to
    expand ``from_user`` without a query per message.
    """

    id = serializers.IntegerField(help_text="The inbox entry id, used by every other endpoint.")
    level = serializers.IntegerField()
    level_tag = serializers.CharField(help_text="The base level's tag: info, warning, ...")
    tags = serializers.CharField()
    message = serializers.CharField(help_text="Plain text; insert it as text, never as HTML.")
    subject = serializers.CharField(allow_blank=True)
    url = serializers.CharField(allow_blank=True)
    data = serializers.JSONField(allow_null=True)
    from_user = SenderSerializer(allow_null=True)
    created = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)
    archived_at = serializers.DateTimeField(allow_null=True)
    expires = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField(allow_blank=True, help_text="Why the user is told: mention...")
    thread = serializers.CharField(allow_null=True, help_text="The thread's key, if any.")
    count = serializers.IntegerField(
        min_value=0, help_text="In a thread: the messages since the user last read it."
    )
    senders = serializers.ListField(
        child=serializers.JSONField(), help_text="Up to three recent senders' user ids."
    )
    seen = serializers.BooleanField(help_text="Shown to the user already; true once read.")
    saved_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return message_to_dict(instance, self.context.get("senders"))


# The list endpoint answers one page object, not a list of them.
@extend_schema_serializer(many=False)
class MessagePageSerializer(serializers.Serializer):
    """A page of the inbox, newest first; follow ``next`` for older entries."""

    next = serializers.URLField(allow_null=True)
    results = MessageSerializer(many=True)


class CountSerializer(serializers.Serializer):
    unread = serializers.IntegerField(min_value=0)
    unseen = serializers.IntegerField(
        min_value=0, help_text="Unread messages the user has not been shown yet."
    )
    max_level = serializers.IntegerField(
        allow_null=True, help_text="The highest level among unread messages."
    )
    max_level_tag = serializers.CharField(allow_null=True)


class ChangedSerializer(serializers.Serializer):
    changed = serializers.IntegerField(min_value=0, help_text="How many entries changed.")
    unread = serializers.IntegerField(min_value=0, help_text="The unread count afterwards.")


class SentSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The id of the shared content, not an entry id.")
    recipient_count = serializers.IntegerField(min_value=0)


class ListQuerySerializer(serializers.Serializer):
    """The list endpoint's query parameters."""

    state = serializers.ChoiceField(choices=STATES, default="unread")
    reason = serializers.RegexField(
        r"^[a-z0-9_-]{1,32}$",
        required=False,
        help_text="Only messages sent with this reason, such as mention.",
        error_messages={"invalid": "A reason is 1 to 32 of a-z, 0-9, '-' and '_'."},
    )
    level = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_LEVEL, help_text="Also finds its variants."
    )
    tag = serializers.RegexField(r"^\S+$", required=False, max_length=255, validators=[_storable])
    since = serializers.DateTimeField(required=False, help_text="Created at or after.")
    before = serializers.DateTimeField(required=False, help_text="Created before.")
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE)
    # The cursor is the last id of the previous page; clients treat it as opaque.
    # At most 18 digits, so that every cursor the schema allows is a storable id.
    cursor = serializers.RegexField(
        r"^[1-9][0-9]{0,17}$",
        required=False,
        help_text="From the previous page's next link.",
        error_messages={"invalid": "Invalid cursor; use the next link as given."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The view's max_page_size wins over the default the schema shows.
        limit = self.context.get("max_page_size")
        if limit is not None:
            self.fields["page_size"] = serializers.IntegerField(
                required=False, min_value=1, max_value=limit
            )

    def validate_cursor(self, value: str) -> int:
        return int(value)


@extend_schema_field(
    {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "format": "date-time"}]}
)
class WatermarkField(serializers.Field):
    """An entry id or an ISO 8601 time: the newest message the client has seen."""

    default_error_messages = {
        "invalid": "Must be a message id or an ISO 8601 date and time.",
    }

    def to_internal_value(self, data: Any) -> int | datetime:
        if isinstance(data, str) and data.isascii() and data.isdigit():
            data = int(data)
        if isinstance(data, int) and not isinstance(data, bool):
            if not 1 <= data <= MAX_ID:
                self.fail("invalid")
            return data
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            parsed = parse_datetime(data)
        except ValueError:
            parsed = None
        if parsed is None:
            self.fail("invalid")
        try:
            if timezone.is_naive(parsed):
                parsed = timezone.make_aware(parsed)
            return check_datetime(parsed, "before")
        except (InvalidMessage, OverflowError, ValueError):
            self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value


class SeenSerializer(serializers.Serializer):
    """Mark seen everything, or everything up to ``before``."""

    before = WatermarkField(required=False)


class SeenAnswerSerializer(serializers.Serializer):
    changed = serializers.IntegerField(min_value=0, help_text="How many entries became seen.")
    unseen = serializers.IntegerField(min_value=0, help_text="The unseen count afterwards.")


class MutedSerializer(serializers.Serializer):
    thread = serializers.CharField(help_text="The thread's key.")
    muted = serializers.BooleanField()


class BulkReadSerializer(serializers.Serializer):
    """Either ``ids`` to mark read, or ``before``: everything up to that watermark."""

    ids = serializers.ListField(child=IdField(), required=False, min_length=1, max_length=1000)
    before = WatermarkField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("ids" in attrs) == ("before" in attrs):
            raise serializers.ValidationError(
                'Send either "ids" (a list of message ids) or "before" (the newest id or '
                "time the client has seen), not both nor neither."
            )
        return attrs


class ComposeSerializer(serializers.Serializer):
    """What a new message carries, checked as ``pigeonhole.send()`` checks it."""

    message = serializers.CharField(trim_whitespace=False)
    level = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LEVEL)
    subject = serializers.CharField(required=False, allow_blank=True, max_length=255)
    url = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    data = serializers.JSONField(required=False, allow_null=True)
    extra_tags = serializers.ListField(
        child=serializers.RegexField(r"^\S+$", max_length=255, validators=[_storable]),
        required=False,
        max_length=50,
    )

    def validate_message(self, value: str) -> str:
        _check(check_text, value)
        return _storable(value)

    def validate_subject(self, value: str) -> str:
        return _storable(value)

    def validate_url(self, value: str) -> str:
        return _check(check_url, value)

    def validate_data(self, value: Any) -> Any:
        _check(check_data_limits, value)
        return _storable(value)

    def validate_extra_tags(self, value: list[str]) -> list[str]:
        _check(check_tags, value)
        return value


class ReplySerializer(ComposeSerializer):
    """A reply goes to the original's sender; its subject defaults to "Re: ..."."""


class SendSerializer(ComposeSerializer):
    """A new message for users and groups, given by id."""

    users = serializers.ListField(child=IdField(), required=False, max_length=1000)
    groups = serializers.ListField(child=IdField(), required=False, max_length=100)
    expires = serializers.DateTimeField(required=False, allow_null=True)

    def _existing(self, model: Any, ids: list[int]) -> list[Any]:
        found = list(model._default_manager.filter(pk__in=set(ids)))
        missing = sorted(set(ids) - {obj.pk for obj in found})
        if missing:
            raise serializers.ValidationError(
                f"No {model._meta.verbose_name} with id {', '.join(map(str, missing))}."
            )
        return found

    def validate_users(self, value: list[int]) -> list[Any]:
        return self._existing(get_user_model(), value)

    def validate_groups(self, value: list[int]) -> list[Any]:
        return self._existing(Group, value)

    def validate_expires(self, value: datetime | None) -> datetime | None:
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("users") and not attrs.get("groups"):
            raise serializers.ValidationError(
                {"users": ['Name at least one recipient in "users" or "groups".']}
            )
        return attrs
