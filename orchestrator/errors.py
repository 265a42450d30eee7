"""Errors of the orchestrator core. Each docstring is the error's default message."""

from __future__ import annotations

from typing import Any


class OrchestratorError(Exception):
    """Raised when the orchestrator cannot do what was asked."""

    status = 500
    title = "Orchestrator error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or (self.__doc__ or "").strip()
        self.extra = extra
        super().__init__(self.detail)

    def to_problem(self) -> dict[str, Any]:
        """The error as the body of an RFC 9457 problem document (without ``instance``)."""
        name = type(self).__name__
        return {
            "type": f"urn:orchestrator:problem:{_kebab(name)}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


class InvalidInput(OrchestratorError):
    """Raised when input breaks a rule; ``errors`` names each field and rule."""

    status = 422
    title = "Invalid input"

    @classmethod
    def of(cls, field: str, message: str) -> InvalidInput:
        """The error of one field breaking one rule; the message is also the detail."""
        return cls(message, errors=[{"field": field, "message": message}])


class Forbidden(OrchestratorError):
    """Raised when a request reaches outside what the operator's settings allow."""

    status = 403
    title = "Forbidden"

    @classmethod
    def of(cls, field: str, message: str, **extra: Any) -> Forbidden:
        """The refusal of one field; the detail starts with the field's name."""
        return cls(f"{field} {message}", errors=[{"field": field, "message": message}], **extra)


class NotFound(OrchestratorError):
    """Raised when the named object does not exist."""

    status = 404
    title = "Not found"


class Conflict(OrchestratorError):
    """Raised when the request conflicts with the current state of the object."""

    status = 409
    title = "Conflict"


class Unavailable(OrchestratorError):
    """Raised when a service the request needs (Redis, SQL, a hypervisor) does not answer."""

    status = 503
    title = "Service unavailable"


class JobFailed(OrchestratorError):
    """Raised by a job step when the job cannot succeed; the job ends ``failed``."""

    status = 500
    title = "Job failed"


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))
