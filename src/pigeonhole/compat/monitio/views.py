"""monitio's JSON list of the messages a page would show."""

from __future__ import annotations

from typing import Any

from django.contrib.messages import get_messages
from django.http import HttpRequest, JsonResponse

__all__ = ["messages_json"]


def _serialize(message: Any) -> dict[str, Any]:
    return {
        "subject": getattr(message, "subject", ""),
        "message": str(message.message),
        "level": message.level,
        "url": getattr(message, "url", "") or None,
        "pk": getattr(message, "pk", None),
        "is_persistent": bool(getattr(message, "is_persistent", False)),
    }


def messages_json(request: HttpRequest) -> JsonResponse:
    """
    Return the user's messages as a JSON list, as monitio's ``message_json`` did.

    Reading them is displaying them: transient ones are consumed, and stored
    ones are marked read if ``READ_ON_DISPLAY`` says so.
    """
    return JsonResponse([_serialize(message) for message in get_messages(request)], safe=False)
