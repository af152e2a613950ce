"""Errors services raise for a caller's mistake. Each carries the HTTP status the API answers
with, so views stay thin and management commands can print the message as it is."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status_code = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(ServiceError):
    """The request is malformed or out of range (400)."""


class NotAllowed(ServiceError):
    """The user may see the object but not do this to it (403)."""

    status_code = 403


class Conflict(ServiceError):
    """The object's current state does not allow this now (409)."""

    status_code = 409


class Gone(ServiceError):
    """The object was deleted while the request ran (404, as for one that never existed)."""

    status_code = 404


class PreconditionRequired(ServiceError):
    """A change that must name the version it started from did not (428)."""

    status_code = 428


class EmbeddingUnavailable(Conflict):
    """The image's embedding cannot be computed (its file is unreadable or the encoder failed)."""
