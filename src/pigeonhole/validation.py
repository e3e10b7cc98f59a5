"""
Turn caller arguments into clean values, or raise an error that names the fix.

Everything is checked before anything is written, so bad input never leaves a
half-sent message behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import attrgetter
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist
from django.db.models import ManyToManyField, Model, Q, QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.safestring import SafeData

from .backends.base import STATES, Recipients
from .conf import pigeonhole_settings
from .exceptions import InvalidMessage
from .message import NewMessage, StoredMessage, UserId

__all__ = [
    "build_message",
    "check_close_timeout",
    "check_data_limits",
    "check_datetime",
    "check_level",
    "check_storable",
    "check_tags",
    "check_text",
    "check_url",
    "entry_id",
    "entry_ids",
    "nested_deeper_than",
    "resolve_recipients",
    "user_id",
]

_SUBJECT_MAX = 255
_TAGS_MAX = 255
_T = TypeVar("_T")
_URL_MAX = 2000
#: What no store keeps as given: PostgreSQL refuses NUL in text and JSON, and
#: no database or Redis client encodes an unpaired surrogate as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def check_level(level: object) -> int:
    if isinstance(level, bool) or not isinstance(level, int):
        raise InvalidMessage(
            f"level must be an integer such as pigeonhole.INFO or pigeonhole.PERSISTENT_INFO, "
            f"got {level!r}."
        )
    return int(level)


def check_datetime(given: object, name: str) -> datetime:
    if not isinstance(given, datetime):
        raise InvalidMessage(f"{name} must be a datetime, got {given!r}.")
    value = given
    if settings.USE_TZ and timezone.is_naive(value):
        raise InvalidMessage(
            f"{name} is a naive datetime while USE_TZ is on; pass an aware one, "
            "e.g. django.utils.timezone.now()."
        )
    if timezone.is_aware(value):
        # In UTC, as stored: databases accept narrower UTC offsets than Python
        # (PostgreSQL refuses +16:00 and beyond), and comparisons stay exact.
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise InvalidMessage(
                f"{name} ({value.isoformat()}) is out of range once converted to UTC."
            ) from None
    return value


def check_storable(value: _T, name: str) -> _T:
    """
    Refuse text a store cannot keep as given; return ``value`` unchanged.

    ``value`` may be nested JSON: its keys and values are checked too, without
    recursion, so deep nesting costs no stack. Every store then refuses the
    same input the same way, before anything is written.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            found = _UNSTORABLE.search(item)
            if found is None:
                continue
            if found.group() == "\x00":
                raise InvalidMessage(
                    f"{name} contains a NUL character (\\x00), which cannot be stored; remove it."
                )
            raise InvalidMessage(
                f"{name} contains an unpaired surrogate ({found.group()!r}), which cannot be "
                "stored; decode the text properly or remove it."
            )
        if isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return value


def check_text(message: object) -> tuple[str, bool]:
    if isinstance(message, Promise):
        message = str(message)
    if not isinstance(message, str):
        raise InvalidMessage(f"message must be text (a str), got {type(message).__name__}.")
    if not message.strip():
        raise InvalidMessage("message is empty; pass the text to show.")
    limit = pigeonhole_settings.MAX_LENGTH
    if len(message) > limit:
        raise InvalidMessage(
            f"message is {len(message)} characters long, more than the {limit} allowed; "
            "shorten it, link to the full text with url=..., or raise "
            "PIGEONHOLE['MAX_LENGTH']."
        )
    check_storable(message, "message")
    return message, isinstance(message, SafeData)


def check_tags(extra_tags: object) -> str:
    if extra_tags is None:
        return ""
    if isinstance(extra_tags, str):
        tags = extra_tags.split()
    elif isinstance(extra_tags, Iterable):
        tags = list(extra_tags)
        for tag in tags:
            if not isinstance(tag, str) or not tag or any(c.isspace() for c in tag):
                raise InvalidMessage(
                    f"extra_tags items must be single words, got {tag!r}; "
                    "pass a list such as ['billing', 'urgent']."
                )
    else:
        raise InvalidMessage(
            f"extra_tags must be a string or a list of strings, got {extra_tags!r}."
        )
    joined = " ".join(tags)
    if len(joined) > _TAGS_MAX:
        raise InvalidMessage(f"extra_tags are longer than {_TAGS_MAX} characters; use fewer tags.")
    return check_storable(joined, "extra_tags")


def check_url(url: object) -> str:
    if not url:
        return ""
    if not isinstance(url, str):
        raise InvalidMessage(f"url must be a string, got {url!r}.")
    if len(url) > _URL_MAX:
        raise InvalidMessage(f"url is longer than {_URL_MAX} characters.")
    lowered = url.strip().lower()
    # Browsers read "\" as "/", so "/\host" and "//host" both lead to another host.
    is_path = url.startswith("/") and url[1:2] not in ("/", "\\")
    if not (is_path or lowered.startswith(("http://", "https://"))) or any(
        ord(c) < 32 or c.isspace() for c in url
    ):
        # Anything else (javascript:, data:, //host) would be a link a message
        # could use to run script or leave the site unseen. Browsers drop spaces
        # and control characters, so they must not hide a "//" either.
        raise InvalidMessage(
            f"url must be a path such as '/orders/42/' or an http(s) URL, got {url!r}."
        )
    return check_storable(url, "url")


def _check_data(data: Any) -> Any:
    if data is None:
        return None
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(
            f"data must be JSON-serialisable (dicts, lists, strings, numbers): {exc}"
        ) from exc
    return check_storable(data, "data")


def nested_deeper_than(data: Any, limit: int) -> bool:
    """
    Return whether dicts and lists in ``data`` nest more than ``limit`` deep.

    A loop, not recursion: data thousands of levels deep must end in a clear
    refusal, not in a ``RecursionError``.
    """
    stack = [(data, 1)] if isinstance(data, dict | list | tuple) else []
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        if depth > limit:
            return True
        stack.extend(
            (child, depth + 1) for child in children if isinstance(child, dict | list | tuple)
        )
    return False


def check_data_limits(data: Any) -> Any:
    """
    Refuse ``data`` nested deeper than ``MAX_DATA_DEPTH`` or longer than ``MAX_DATA_BYTES``.

    ``data`` is stored once and copied into every page, stream and API answer
    that shows the message, so a sender must not be able to make it huge.
    Size is the length of the compact JSON encoding in UTF-8. Depth is checked
    first, since encoding a deep enough structure overflows the stack.
    """
    if data is None:
        return None
    depth_limit = pigeonhole_settings.MAX_DATA_DEPTH
    if nested_deeper_than(data, depth_limit):
        raise InvalidMessage(
            f"data is nested more than {depth_limit} levels deep; flatten it, or raise "
            "PIGEONHOLE['MAX_DATA_DEPTH']."
        )
    try:
        encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except TypeError:
        return data  # not JSON at all: _check_data names the fix
    except ValueError as exc:
        raise InvalidMessage(
            f"data must be JSON, which has no NaN or infinite numbers: {exc}"
        ) from exc
    size = len(encoded.encode("utf-8", "surrogatepass"))
    limit = pigeonhole_settings.MAX_DATA_BYTES
    if size > limit:
        raise InvalidMessage(
            f"data is {size} bytes as JSON, more than the {limit} allowed "
            "(PIGEONHOLE['MAX_DATA_BYTES']); store the rest elsewhere and pass its id, "
            "or raise the setting."
        )
    return data


def _check_expires(given: object, now: datetime) -> datetime | None:
    if given is None:
        return None
    expires = check_datetime(now + given if isinstance(given, timedelta) else given, "expires")
    if expires <= now:
        raise InvalidMessage(
            f"expires ({expires.isoformat()}) is in the past; pass a later datetime "
            "or a timedelta such as timedelta(days=7)."
        )
    return expires


def check_close_timeout(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidMessage(f"close_timeout must be a positive number of seconds, got {value!r}.")
    return value


def _target(target: object) -> tuple[int | None, str]:
    if target is None:
        return None, ""
    if not isinstance(target, Model):
        raise InvalidMessage(f"target must be a model instance, got {target!r}.")
    if target.pk is None:
        raise InvalidMessage("target has not been saved yet; save it before sending.")
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(target).pk, str(target.pk)


def _check_category(category: object) -> str | None:
    if category is None or category == "":
        return None
    from .categories import get_categories

    declared = get_categories()
    if not isinstance(category, str) or category not in declared or not category:
        names = ", ".join(repr(name) for name in declared if name) or "none yet"
        raise InvalidMessage(
            f"category {category!r} is not declared in PIGEONHOLE['CATEGORIES'] "
            f"(declared: {names}); declare it there with a label."
        )
    return category


def user_id(user: object, role: str = "user", *, model: type[Model] | None = None) -> UserId:
    """
    Return the pk of a saved, authenticated user, or explain what is wrong.

    ``model`` is the user model when the caller already has it: a send to a
    list checks every recipient, and looking the model up each time was most
    of the cost.
    """
    User = model or get_user_model()
    if user is None or not getattr(user, "is_authenticated", False):
        raise InvalidMessage(
            f"{role} is anonymous; messages are stored for logged-in users only "
            "(check request.user.is_authenticated first)."
        )
    if not isinstance(user, User):
        raise InvalidMessage(f"{role} must be a {User.__name__} instance, got {user!r}.")
    if user.pk is None:
        raise InvalidMessage(f"{role} has not been saved yet; save the user first.")
    return user.pk


def build_message(
    level: object,
    message: object,
    *,
    subject: object = "",
    extra_tags: object = "",
    url: object = "",
    data: object = None,
    from_user: object = None,
    target: object = None,
    in_reply_to: int | None = None,
    close_timeout: object = None,
    email: object = None,
    expires: object = None,
    category: object = None,
    thread: object = None,
    reason: object = None,
) -> NewMessage:
    """Validate everything a message carries and return it ready to store."""
    now = timezone.now()
    text, safe = check_text(message)
    if subject is None:
        subject = ""
    if isinstance(subject, Promise):
        subject = str(subject)
    if not isinstance(subject, str) or len(subject) > _SUBJECT_MAX:
        raise InvalidMessage(f"subject must be a string of at most {_SUBJECT_MAX} characters.")
    check_storable(subject, "subject")
    if email is not None and not isinstance(email, bool):
        raise InvalidMessage(
            f"email must be True, False or None (use EMAIL_LEVELS), got {email!r}."
        )
    content_type_id, object_id = _target(target)
    return NewMessage(
        level=check_level(level),
        message=text,
        safe=safe,
        subject=subject,
        extra_tags=check_tags(extra_tags),
        url=check_url(url),
        data=_check_data(check_data_limits(data)),
        from_user_id=None if from_user is None else user_id(from_user, "from_user"),
        target_content_type_id=content_type_id,
        target_object_id=object_id,
        in_reply_to_id=in_reply_to,
        close_timeout=check_close_timeout(close_timeout),
        email=email,
        expires=_check_expires(expires, now),
        created=now,
        category=_check_category(category),
        thread=thread_key(thread, target),
        reason=check_reason(reason),
    )


THREAD_MAX = 200
_REASON = re.compile(r"[a-z0-9_-]{1,32}")


def thread_key(thread: object, target: object = None) -> str | None:
    """
    Return the key of a thread: a string, a model instance or ``True`` for ``target``.

    A model instance's key is ``"app_label.model:pk"``, so every message about
    one object, from anywhere, shares a thread.
    """
    if thread is None:
        return None
    if thread is True:
        if target is None:
            raise InvalidMessage("thread=True threads by the target; pass target= too.")
        thread = target
    if isinstance(thread, Model):
        if thread.pk is None:
            raise InvalidMessage("thread is an unsaved model instance; save it first.")
        thread = f"{thread._meta.label_lower}:{thread.pk}"
    if not isinstance(thread, str) or not thread or len(thread) > THREAD_MAX:
        raise InvalidMessage(
            f"thread must be a key of 1 to {THREAD_MAX} characters, a saved model instance "
            f"or True (the target); got {thread!r}."
        )
    return check_storable(thread, "thread")


def check_reason(reason: object) -> str:
    """Return ``reason`` if it is a short slug such as ``"mention"``; "" for none."""
    if reason is None or reason == "":
        return ""
    if not isinstance(reason, str) or not _REASON.fullmatch(reason):
        raise InvalidMessage(
            f"reason must be 1 to 32 lowercase letters, digits, '-' or '_', such as "
            f"'mention'; got {reason!r}."
        )
    return reason


def _saved_users(items: list[Any], User: type[Model]) -> list[UserId] | None:
    """
    Return the distinct pks of ``items`` if all are saved, authenticated
    users, else None, for ``user_id()`` to check them one by one and name
    the culprit.

    A send to a list of 100,000 users checks each of them: ``map()`` runs
    the same checks as ``user_id()`` several times quicker than a loop. The
    pk is read from its column's attribute, not through the ``pk`` property,
    which costs three times as much; a subclass's instance carries it too.
    """
    if not items or not all(map(isinstance, items, repeat(User))):
        return None
    if not all(map(attrgetter("is_authenticated"), items)):
        return None
    pks = list(map(attrgetter(User._meta.pk.attname), items))
    return None if None in pks else list(dict.fromkeys(pks))


def members_of(groups: QuerySet[Group] | list[Any]) -> QuerySet[Any, Any]:
    """
    Return the ids of the groups' members, as a query of the membership table alone.

    ``pk IN`` this needs no join with the users table, so it cannot repeat a
    user and the store reads it as it is: joining through ``groups`` made
    every group send a join and a semi-join (a tenth more time on PostgreSQL).
    """
    User = get_user_model()
    try:
        field = User._meta.get_field("groups")
    except FieldDoesNotExist:
        field = None
    if not isinstance(field, ManyToManyField):
        raise InvalidMessage(
            f"to names groups, but the user model {User._meta.label} has no groups field; "
            "send to its users instead."
        )
    membership = field.remote_field.through
    assert membership is not None  # Django makes one for every many-to-many field
    group = field.m2m_reverse_field_name()
    members = membership._default_manager.filter(**{f"{group}__in": groups})
    return members.values(field.m2m_field_name())


def resolve_recipients(to: object) -> Recipients:
    """
    Turn a user, users, a QuerySet or Group(s) into ``Recipients``.

    QuerySets and groups stay queries, so the database copies the recipients
    itself; only explicit lists of users become ids in Python.
    """
    User = get_user_model()
    if isinstance(to, QuerySet):
        if issubclass(to.model, User):
            if to.query.is_sliced:
                # A slice cannot be reordered or made distinct: take its ids.
                return Recipients(ids=list(dict.fromkeys(to.values_list("pk", flat=True))))
            return Recipients(queryset=to)
        if issubclass(to.model, Group):
            return Recipients(queryset=User._default_manager.filter(pk__in=members_of(to)))
        raise InvalidMessage(
            f"to is a QuerySet of {to.model.__name__}; pass a QuerySet of users or groups."
        )
    if isinstance(to, Group | User) or getattr(to, "is_anonymous", False):
        to = [to]
    if to is None or isinstance(to, str | bytes) or not isinstance(to, Iterable):
        raise InvalidMessage(
            f"to must be a user, a list of users, a QuerySet of users, or Group(s); got {to!r}. "
            "To send by username, look the users up first: "
            "User.objects.filter(username__in=[...])."
        )
    items = list(to)
    saved = _saved_users(items, User)
    if saved is not None:
        return Recipients(ids=saved)
    ids: dict[Any, None] = {}
    group_ids: list[Any] = []
    for item in items:
        if isinstance(item, Group):
            if item.pk is None:
                raise InvalidMessage(f"group {item!r} has not been saved yet.")
            group_ids.append(item.pk)
        else:
            ids[user_id(item, "recipient", model=User)] = None
    if not ids and not group_ids:
        raise InvalidMessage("to is empty; pass at least one user or group.")
    if group_ids:
        members = Q(pk__in=members_of(group_ids))
        return Recipients(
            queryset=User._default_manager.filter(Q(pk__in=list(ids)) | members if ids else members)
        )
    return Recipients(ids=list(ids))


def entry_id(value: object) -> int:
    if isinstance(value, StoredMessage):
        return value.id
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMessage(
            f"{value!r} is not a message id; pass inbox entry ids (integers) or the "
            "StoredMessage objects pigeonhole.inbox() returns."
        )
    return value


def entry_ids(entries: object) -> list[int]:
    """Accept one id, one StoredMessage, or an iterable of either."""
    if isinstance(entries, int | str | StoredMessage):
        return [entry_id(entries)]
    if not isinstance(entries, Iterable):
        raise InvalidMessage(f"entries must be ids or StoredMessages, got {entries!r}.")
    return list(dict.fromkeys(entry_id(entry) for entry in entries))


def check_inbox_args(
    state: object,
    limit: object,
    after: object,
    level: object,
    tag: object,
    since: object,
    before: object,
) -> tuple[datetime | None, datetime | None]:
    """Check ``inbox()``'s arguments; return ``since`` and ``before`` in UTC."""
    if state not in STATES:
        raise InvalidMessage(f"state must be one of {', '.join(STATES)}; got {state!r}.")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise InvalidMessage(f"limit must be an integer from 1 to 1000, got {limit!r}.")
    if after is not None:
        entry_id(after)
    if level is not None:
        check_level(level)
    if tag is not None and (not isinstance(tag, str) or not tag or " " in tag):
        raise InvalidMessage(f"tag must be a single word, got {tag!r}.")
    check_storable(tag, "tag")
    return (
        None if since is None else check_datetime(since, "since"),
        None if before is None else check_datetime(before, "before"),
    )
