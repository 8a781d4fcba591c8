"""Domain errors. Services raise these; one handler turns them into the error envelope."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status_code, code = 400, "bad_request"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message, self.details = message, details or {}


class NotFound(AppError):
    status_code, code = 404, "not_found"


class Unauthorized(AppError):
    status_code, code = 401, "unauthorized"


class Forbidden(AppError):
    status_code, code = 403, "forbidden"


class Conflict(AppError):
    status_code, code = 409, "conflict"


class InvalidTransition(AppError):
    status_code, code = 409, "invalid_transition"


class PayloadTooLarge(AppError):
    status_code, code = 413, "payload_too_large"


class UnsupportedMediaType(AppError):
    status_code, code = 415, "unsupported_media_type"


class ServiceUnavailable(AppError):
    status_code, code = 503, "service_unavailable"


class Unprocessable(AppError):
    status_code, code = 422, "validation_error"
