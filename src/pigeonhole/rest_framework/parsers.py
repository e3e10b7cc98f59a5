"""
The JSON parser of every pigeonhole endpoint: a malformed body is a 400, never a 500.

DRF's own parser turns a ``ValueError`` into a 400 but lets a ``RecursionError``
through, and a body nested a few thousand levels deep raises one. A body a
little shallower parses, then overflows whatever walks it next (a serializer
field, the JSON encoder). So bodies are refused past the deepest nesting any
field takes: ``data`` at its deepest, inside the body object.
"""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.settings import api_settings

from ..conf import DATA_DEPTH_CEILING
from ..validation import nested_deeper_than

__all__ = ["JSONParser", "safe_parser_classes"]


class JSONParser(parsers.JSONParser):
    """``rest_framework.parsers.JSONParser`` with a bound on nesting."""

    #: The deepest body accepted: ``data`` nested as deep as a site may allow, in an object.
    max_depth = DATA_DEPTH_CEILING + 1

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        too_deep = ParseError(f"JSON parse error - nested more than {self.max_depth} levels deep.")
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if nested_deeper_than(data, self.max_depth):
            raise too_deep
        return data


def safe_parser_classes() -> list[type[parsers.BaseParser]]:
    """Return ``DEFAULT_PARSER_CLASSES`` with DRF's JSON parser swapped for this module's."""
    return [
        JSONParser if parser is parsers.JSONParser else parser
        for parser in api_settings.DEFAULT_PARSER_CLASSES
    ]
