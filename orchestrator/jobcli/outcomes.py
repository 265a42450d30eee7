"""Exit codes of the job commands, and the errors that end them. docs/cli.md lists the codes."""

from __future__ import annotations

from enum import IntEnum

from orchestrator.client import ApiError


class ExitCode(IntEnum):
    SUCCEEDED = 0  # the job succeeded (or, without --wait, was accepted)
    FAILED = 1  # the job failed
    REFUSED = 2  # bad input, or the API refused the request (any 4xx)
    STOPPED = 3  # the job was cancelled or lost
    TIMED_OUT = 4  # --timeout ran out while waiting
    UNREACHABLE = 5  # the API did not answer (or answered 5xx) for longer than --retry-for
    INTERRUPTED = 130  # Ctrl-C while following: the job goes on


_BY_STATE = {
    "succeeded": ExitCode.SUCCEEDED,
    "failed": ExitCode.FAILED,
    "cancelled": ExitCode.STOPPED,
    "lost": ExitCode.STOPPED,
}


def exit_code_for_state(state: str) -> ExitCode:
    """How a finished job's state reads to a CI pipeline."""
    return _BY_STATE.get(state, ExitCode.FAILED)


def exit_code_for_refusal(error: ApiError) -> ExitCode:
    """A 4xx is the request's fault; anything else is the API's."""
    return ExitCode.REFUSED if 400 <= error.status < 500 else ExitCode.UNREACHABLE


class FollowError(Exception):
    """Raised when a job command cannot go on."""

    exit_code = ExitCode.FAILED
    title = "Cannot go on"
    slug = "cli-error"  # the problem document's type, urn:orchestrator:problem:<slug>

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or (self.__doc__ or "").strip()
        super().__init__(self.detail)


class Unreachable(FollowError):
    """Raised when the API did not answer, or answered 5xx, for longer than the retry budget."""

    exit_code = ExitCode.UNREACHABLE
    title = "API unreachable"
    slug = "api-unreachable"


class TimedOut(FollowError):
    """Raised when --timeout ran out before the job finished."""

    exit_code = ExitCode.TIMED_OUT
    title = "Timed out"
    slug = "timed-out"
