"""Pagination of every list: ``?limit=`` and ``?offset=`` as DRF's LimitOffsetPagination has
them, with bounds.

DRF's own quietly falls back to the page size for a limit that is not a positive number and
passes any limit to the database, where one of 2^63 or more overflows (a 500). Here a limit or
offset that is not a whole number in range is a 400 naming the parameter; a limit above
MAX_LIMIT is served as MAX_LIMIT (the answer's ``next`` link leads on), as DRF's max_limit does.
"""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 1000
# Past any table this platform will hold, and within the database's signed 64-bit range.
MAX_OFFSET = 2**53


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def get_limit(self, request) -> int | None:
        raw = request.query_params.get(self.limit_query_param)
        if raw in (None, ""):
            return self.default_limit
        return min(whole_number(raw, self.limit_query_param, minimum=1), self.max_limit)

    def get_offset(self, request) -> int:
        raw = request.query_params.get(self.offset_query_param)
        if raw in (None, ""):
            return 0
        return whole_number(raw, self.offset_query_param, minimum=0, maximum=MAX_OFFSET)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1},
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET},
        }
        for parameter in parameters:
            parameter["schema"] |= bounds.get(parameter["name"], {})
            if parameter["name"] == self.limit_query_param:
                parameter["description"] += f" (at most {self.max_limit} are returned)"
        return parameters


def whole_number(raw: str, name: str, *, minimum: int, maximum: int | None = None) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        message = f"{raw[:40]!r} is not a whole number of at least {minimum}{upper}"
        raise ValidationError({name: message})
    return value


class ImagePagination(BoundedLimitOffsetPagination):
    """The image lists': offset pages as everywhere, or keyset pages (``?after=``, see
    ImageViewSet.list) that answer ``next`` and ``results`` only, since counting the list is
    what a keyset page saves. The schema says so (``count`` not required)."""

    def get_paginated_response_schema(self, schema: dict) -> dict:
        answer = super().get_paginated_response_schema(schema)
        answer["required"] = ["results"]
        answer["properties"]["count"]["description"] = (
            "images in the list; absent from keyset pages (?after=)"
        )
        return answer
