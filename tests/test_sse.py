"""Server-Sent Events frames, checked as text: no server needed."""

import pytest

from pigeonhole.sse import comment, encode_event, retry


def test_event_with_id_and_json_data():
    frame = encode_event("message", {"id": 3, "message": "Hi"}, id="3-abc")
    assert frame == 'event: message\nid: 3-abc\ndata: {"id":3,"message":"Hi"}\n\n'


def test_data_only_event_has_no_event_line():
    assert encode_event(None, "plain") == "data: plain\n\n"


def test_multiline_text_becomes_several_data_lines():
    assert encode_event("x", "one\ntwo\r\nthree\rfour") == (
        "event: x\ndata: one\ndata: two\ndata: three\ndata: four\n\n"
    )


def test_json_data_escapes_line_breaks_so_one_line_is_enough():
    frame = encode_event("message", {"message": "a\nb"})
    assert frame == 'event: message\ndata: {"message":"a\\nb"}\n\n'


def test_retry_is_milliseconds():
    assert encode_event("count", 1, retry=3000) == "event: count\nretry: 3000\ndata: 1\n\n"


@pytest.mark.parametrize("retry", [-1, 1.5, "10", True])
def test_bad_retry_is_refused(retry):
    with pytest.raises(ValueError, match="retry"):
        encode_event("count", 1, retry=retry)


@pytest.mark.parametrize(
    ("event", "id"),
    [("message\nid: 9", None), ("message", "1\nevent: x"), ("message", "1\r2"), (None, "a\0b")],
)
def test_line_breaks_cannot_inject_fields(event, id):
    with pytest.raises(ValueError):
        encode_event(event, "x", id=id)


def test_dates_and_decimals_are_json_encoded():
    from datetime import UTC, datetime
    from decimal import Decimal

    frame = encode_event("x", {"at": datetime(2025, 1, 2, tzinfo=UTC), "n": Decimal("1.5")})
    assert frame == 'event: x\ndata: {"at":"2025-01-02T00:00:00Z","n":"1.5"}\n\n'


def test_comment_keeps_the_connection_alive_without_an_event():
    assert comment("keep-alive") == ": keep-alive\n\n"
    assert comment() == ": \n\n"
    assert comment("a\nb") == ": a\n: b\n\n"


def test_retry_frame_sets_the_delay_without_an_event():
    assert retry(2500) == "retry: 2500\n\n"
    with pytest.raises(ValueError):
        retry(-5)
