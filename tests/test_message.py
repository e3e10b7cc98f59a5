"""
A message's content is one dataclass, and each store's field list derives from it.

Adding a field to ``Content`` (with its model column and migration) must be
enough for every store to write and read it back: these tests fail when a
store lists the fields again, or when the model and the dataclass part.
"""

import dataclasses

from django.utils import timezone
from django.utils.safestring import SafeData

from pigeonhole.backends.db import sql
from pigeonhole.backends.redis.encoding import (
    CONTENT_KINDS,
    Kind,
    content_fields,
    decode_content,
    kind_of,
)
from pigeonhole.message import CONTENT_FIELDS, STATE_FIELDS, Content, NewMessage, StoredMessage
from pigeonhole.models import InboxEntry, Message


def columns(model):
    return {field.attname for field in model._meta.concrete_fields}


def test_content_fields_are_the_message_columns_but_its_times():
    # created and expires are the entry's own (an entry can expire alone).
    assert set(CONTENT_FIELDS) == columns(Message) - {"id", "created", "expires"}
    assert tuple(f.name for f in dataclasses.fields(Content)) == CONTENT_FIELDS


def test_the_entry_state_fields_are_inbox_entry_columns():
    assert set(STATE_FIELDS) <= columns(InboxEntry)
    assert not set(STATE_FIELDS) & set(CONTENT_FIELDS)


def test_the_database_reads_every_state_and_content_field():
    assert STATE_FIELDS + tuple(f"message__{name}" for name in CONTENT_FIELDS) == sql.COLUMNS


def test_the_redis_codec_covers_every_content_field():
    assert tuple(CONTENT_KINDS) == CONTENT_FIELDS


def test_each_type_has_the_redis_encoding_of_before():
    # Stored hashes stay readable: text as it is, a flag as "1", the rest JSON.
    assert [kind_of(hint) for hint in (str, str | None, bool, int, int | None)] == [
        Kind.TEXT,
        Kind.TEXT,
        Kind.FLAG,
        Kind.JSON,
        Kind.JSON,
    ]
    hashed = content_fields(NewMessage(level=21, message="hi", close_timeout=5), timezone.now())
    assert dict(zip(hashed[::2], hashed[1::2], strict=True)) == {
        "created": hashed[1],
        "level": "21",
        "message": "hi",
        "close_timeout": "5",
    }


def test_every_content_field_survives_the_redis_codec():
    sent = NewMessage(
        level=31,
        message="<b>all</b>",
        subject="Subject",
        extra_tags="a b",
        url="/x/",
        data={"n": [1, None]},
        safe=True,
        from_user_id=7,
        target_content_type_id=3,
        target_object_id="9",
        in_reply_to_id=4,
        close_timeout=5,
        email=False,
        category="billing",
        thread="order:1",
        reason="mention",
    )
    unset = [f.name for f in dataclasses.fields(Content) if getattr(sent, f.name) == f.default]
    assert not unset, f"set {unset} above, so the round trip covers them"
    hashed = content_fields(sent, timezone.now())
    back = decode_content(dict(zip(hashed[::2], hashed[1::2], strict=True)))
    assert back == sent.content_values()


def test_absent_hash_fields_read_as_the_defaults():
    back = decode_content({"level": "21", "message": "hi"})
    assert back == NewMessage(level=21, message="hi").content_values()


def test_a_stored_message_is_its_content_and_its_entry_state():
    sent = NewMessage(level=21, message="<i>x</i>", safe=True, from_user_id=5, thread="t")
    stored = StoredMessage.from_new(sent, id=1, message_id=2, user_id=3, created=None, expires=None)
    assert stored.content_values() == sent.content_values()
    assert isinstance(stored.message, SafeData)
    assert (stored.id, stored.message_id, stored.user_id, stored.senders) == (1, 2, 3, [5])
    # What stores keep for none reads as one form.
    blank = StoredMessage(id=4, level=21, message="m", extra_tags=None, thread="", reason=None)
    assert (blank.extra_tags, blank.thread, blank.reason) == ("", None, "")
