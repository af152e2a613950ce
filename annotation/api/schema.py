"""The OpenAPI schema documents each operation's error answers, not only its success.

drf-spectacular lists what a view's ``@extend_schema`` names; this AutoSchema (the default
schema class) adds the 4xx answers that the framework gives on its own, wherever they can
happen, each with the body every error has (annotation.api.errors.ErrorSerializer):
401 and 403 where credentials or a permission are needed, 404 where the path names an object,
400 where there is a body or query to get wrong, 413 and 415 where there is a body, 429 where
the view is throttled. Views still name their own (409, 428, ...) with ``@extend_schema``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import SAFE_METHODS, AllowAny

from annotation.api.errors import ErrorSerializer

ERROR_DESCRIPTIONS = {
    400: "The body, a parameter or the state it asks for is not valid; detail says which "
    "(field errors are also listed per field).",
    401: "No credentials, or credentials that are not valid (send Authorization: Token ...).",
    403: "Signed in, but not allowed to do this (a role is missing, or the CSRF token of a "
    "session).",
    404: "No such object among those the user may see.",
    413: "The request body or upload is over the site's limit.",
    415: "The body's Content-Type is not one this operation reads.",
    409: "The object's current state does not allow this now; detail says why.",
    428: "The change does not name the version it started from (version or If-Match).",
    429: "Too many requests; Retry-After says when to try again.",
}
HEADERS = {
    401: {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": "the scheme to authenticate with (Token)",
        }
    },
    429: {
        "Retry-After": {
            "schema": {"type": "string"},
            "description": "seconds to wait before trying again",
        }
    },
}


def error_responses(*codes: int, **descriptions: str) -> dict[int, OpenApiResponse]:
    """Error answers a view documents itself, to merge into ``@extend_schema(responses=...)``:
    ``{200: ImageSerializer, **error_responses(409)}``; ``descriptions`` by "c409" etc."""
    return {
        code: OpenApiResponse(
            ErrorSerializer,
            description=descriptions.get(f"c{code}")
            or ERROR_DESCRIPTIONS.get(code, "An error; detail says what."),
        )
        for code in codes
    }


class ApiAutoSchema(AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry) -> Any:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for code in self.error_codes(operation):
            responses.setdefault(str(code), self.error_response(code))
        for code, answer in responses.items():
            # A view's own ``409: None`` and the like: the body is still the error body.
            if code.isdigit() and int(code) >= 400 and "content" not in answer:
                answer["content"] = self.error_response(int(code))["content"]
        return operation

    def error_codes(self, operation: dict) -> list[int]:
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        unsafe = self.method not in SAFE_METHODS
        permissions = self.view.get_permissions()
        codes = []
        if has_body or unsafe or any(p["in"] == "query" for p in parameters):
            codes.append(400)
        if self.view.get_authenticators():
            codes.append(401)  # also for a Token header that is not valid, on any route
        if unsafe or not all(isinstance(p, AllowAny) for p in permissions):
            codes.append(403)  # a permission, or the CSRF check of a session
        if any(p["in"] == "path" for p in parameters):
            codes.append(404)
        if has_body:
            codes += [413, 415]
        if self.view.get_throttles():
            codes.append(429)
        return codes

    def error_response(self, code: int) -> dict:
        component = self.resolve_serializer(ErrorSerializer, "response")
        answer: dict[str, Any] = {
            "description": ERROR_DESCRIPTIONS.get(code, "An error; detail says what."),
            "content": {"application/json": {"schema": component.ref}},
        }
        if code in HEADERS:
            answer["headers"] = HEADERS[code]
        return answer
