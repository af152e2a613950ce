"""The JSON parser of every API view: DRF's, with a bound on nesting.

Python's JSON decoder recurses once per level, so a body of a few thousand ``[`` raises
RecursionError, which DRF's parser does not catch (a 500). No request of this API nests deeper
than a handful of levels (a mask's prompt holds points, which hold coordinates), so anything
deeper than MAX_JSON_DEPTH is refused with a 400 before a serializer or a JSON column sees it.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 32


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(too_deep_message()) from None
        if nesting_exceeds(data, MAX_JSON_DEPTH):
            raise ParseError(too_deep_message())
        return data


def too_deep_message() -> str:
    return f"JSON nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and objects"


def nesting_exceeds(data: Any, limit: int) -> bool:
    """Whether arrays and objects in ``data`` nest more than ``limit`` levels (no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
