"""Level shortcuts (``info(request, message, ...)``) over a library's ``add_message``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["level_shortcut"]


def level_shortcut(add_message: Callable[..., Any], level: int, name: str, doc: str):
    """
    Return ``name(request, message, ...)`` calling ``add_message`` at ``level``.

    The arguments after ``message`` are ``add_message``'s, in its order, and
    the shortcut shows its signature, so help() and IDEs list them.
    """

    def shortcut(request: Any, message: Any, *args: Any, **kwargs: Any) -> Any:
        return add_message(request, level, message, *args, **kwargs)

    parameters = list(inspect.signature(add_message).parameters.values())
    shortcut.__signature__ = inspect.Signature(parameters[:1] + parameters[2:])  # type: ignore[attr-defined]
    shortcut.__name__ = shortcut.__qualname__ = name
    shortcut.__doc__ = doc
    return shortcut
