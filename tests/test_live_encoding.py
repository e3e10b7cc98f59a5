"""A message's event data, encoded once for all its recipients: pure values, no server."""

from datetime import timedelta

import pytest
from django.utils import timezone

from pigeonhole.live import event_data, message_data
from pigeonhole.message import StoredMessage
from pigeonhole.representation import message_to_dict, recipient_fields
from pigeonhole.sse import Data, encode_data, encode_event

NOW = timezone.now()

#: A value for each field of an entry that its recipient alone has.
RECIPIENT_VALUES = {
    "created": NOW - timedelta(seconds=5),
    "read_at": NOW,
    "archived_at": NOW,
    "expires": NOW + timedelta(days=1),
    "seen_at": NOW,
    "saved_at": NOW,
    "thread": "order:7",
    "count": 3,
    "senders": [4, 5],
    "emailed_at": NOW,
}


def entry(id, **fields):
    values = {"level": 21, "message": 'Disk "full"\nnow', "data": {"pct": 97}, "created": NOW}
    return StoredMessage(id=id, user_id=id + 100, message_id=1, **{**values, **fields})


def test_every_recipient_gets_the_json_of_its_own_entry():
    entries = [entry(1), entry(2), entry(3, read_at=NOW), entry(4, thread="t", count=2)]
    replaced = {4: entry(0, thread="t")}
    encoded = message_data(entries, {}, replaced)
    assert encoded == [encode_data(event_data(e, {}, replaced)) for e in entries]
    assert all(isinstance(data, Data) for data in encoded)


def test_recipients_of_a_fresh_message_share_one_encoding_but_for_the_id():
    first, second = message_data([entry(1), entry(22)], {}, {})
    assert first.startswith('data: {"id":1,') and second.startswith('data: {"id":22,')
    assert first.removeprefix('data: {"id":1,') == second.removeprefix('data: {"id":22,')


@pytest.mark.parametrize("name", sorted(RECIPIENT_VALUES))
def test_whatever_the_json_shows_of_an_entry_is_among_its_recipient_fields(name):
    # An entry field that changed the JSON but not recipient_fields() would let
    # one recipient's frame carry another's state.
    plain, changed = entry(1), entry(1, **{name: RECIPIENT_VALUES[name]})
    if message_to_dict(changed) != message_to_dict(plain):
        assert recipient_fields(changed) != recipient_fields(plain)


def test_encoded_data_goes_into_a_frame_as_it_is():
    data = encode_data({"unread": 2})
    assert encode_event("count", data, id="3-00000000") == encode_event(
        "count", {"unread": 2}, id="3-00000000"
    )
