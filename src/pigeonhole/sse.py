"""
Server-Sent Events encoding: text in, text out, no I/O.

The stream view builds every frame here, so the wire format is tested without
a server. See https://html.spec.whatwg.org/multipage/server-sent-events.html.
"""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder

__all__ = ["Data", "comment", "encode_data", "encode_event", "retry", "to_json"]

# One encoder for every call: json.dumps() with options builds a new one each time,
# and a broadcast encodes a count for each of thousands of streams.
_encode = DjangoJSONEncoder(separators=(",", ":")).encode


def _field(name: str, value: str) -> str:
    # A line break inside a field would end it early and let the rest be read as
    # another field (an injected "event:" or "id:"), so single-line fields refuse them.
    if "\n" in value or "\r" in value:
        raise ValueError(f"An SSE {name} cannot contain a line break: {value!r}")
    return f"{name}: {value}\n"


def to_json(data: object) -> str:
    """Return ``data`` as the compact, one-line JSON of an event's ``data`` field."""
    return _encode(data)


class Data(str):
    """
    An event's ``data:`` lines, encoded once by :func:`encode_data`.

    A message sent to thousands of streams is the same text in every frame
    but for its ``id:``; ``encode_event()`` takes the lines as they are.
    """

    __slots__ = ()


def encode_data(data: object) -> Data:
    """
    Return the ``data:`` lines of ``data``, as ``encode_event()`` writes them.

    Data that is not a string is sent as compact JSON. A string is split
    on line breaks into several ``data:`` lines, which the browser joins back
    with ``\\n``.
    """
    if not isinstance(data, str):
        data = to_json(data)
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return Data("".join(f"data: {line}\n" for line in lines))


def encode_event(
    event: str | None,
    data: object,
    id: str | None = None,
    retry: int | None = None,
) -> str:
    """
    Return one event frame: ``event``, ``id``, ``retry`` and ``data`` lines, then a blank line.

    ``data`` is encoded by :func:`encode_data`, unless it is already (a
    ``Data``). ``retry`` is the reconnection delay in milliseconds.
    """
    lines = []
    if event is not None:
        lines.append(_field("event", event))
    if id is not None:
        if "\0" in id:
            raise ValueError("An SSE id cannot contain NUL; browsers would ignore it.")
        lines.append(_field("id", id))
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
            raise ValueError(f"retry must be a number of milliseconds, got {retry!r}")
        lines.append(f"retry: {retry}\n")
    lines.append(data if isinstance(data, Data) else encode_data(data))
    return "".join(lines) + "\n"


def comment(text: str = "") -> str:
    """
    Return a comment frame, which clients ignore.

    Sent as a keep-alive: proxies and load balancers close connections that
    stay silent, and a write is also how the server notices a client is gone.
    """
    return "".join(f": {line}\n" for line in text.splitlines() or [""]) + "\n"


def retry(milliseconds: int) -> str:
    """
    Return a frame that only sets the client's reconnection delay.

    It dispatches no event, so it can open a stream before there is anything to say.
    """
    if isinstance(milliseconds, bool) or not isinstance(milliseconds, int) or milliseconds < 0:
        raise ValueError(f"retry must be a number of milliseconds, got {milliseconds!r}")
    return f"retry: {milliseconds}\n\n"
