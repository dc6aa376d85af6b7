"""Domain errors shared by every service, mapped once at the gateway to RFC 9457 problems."""
from __future__ import annotations


class DomainError(Exception):
    """An expected refusal: bad input or a command not allowed now. Nothing is recorded."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def type_name(self) -> str:
        return type(self).__name__

    def to_problem(self) -> dict:
        problem = {
            "type": f"https://consult.example/problems/{self.type_name}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.type_name,
        }
        problem.update(self.extra)
        return problem


class InvalidInput(DomainError):
    status = 422
    title = "Invalid input"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


class Conflict(DomainError):
    """The command conflicts with the current state (wrong state, duplicate, already done)."""

    status = 409
    title = "Conflict"
