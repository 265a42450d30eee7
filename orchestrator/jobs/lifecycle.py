"""The job lifecycle: states, allowed transitions and the attempt rule, as pure functions."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    PENDING = "pending"  # stored in SQL, not yet handed to the broker
    QUEUED = "queued"  # published on its hypervisor's queue
    RUNNING = "running"  # claimed by a worker for the current attempt
    SUCCEEDED = "succeeded"  # finished, result recorded
    FAILED = "failed"  # finished with an error
    CANCELLED = "cancelled"  # withdrawn before it ran
    LOST = "lost"  # its worker vanished and the job could not safely run again

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.LOST}
)

# target state -> states it may be entered from. RUNNING -> QUEUED is the re-run of a job whose
# worker vanished (a new attempt); PENDING -> RUNNING covers a worker that claims before the
# publisher's QUEUED event lands.
_ENTERED_FROM: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset(),
    JobState.QUEUED: frozenset({JobState.PENDING, JobState.RUNNING}),
    JobState.RUNNING: frozenset({JobState.PENDING, JobState.QUEUED}),
    JobState.SUCCEEDED: frozenset({JobState.RUNNING}),
    JobState.FAILED: frozenset({JobState.PENDING, JobState.QUEUED, JobState.RUNNING}),
    JobState.CANCELLED: frozenset({JobState.PENDING, JobState.QUEUED}),
    JobState.LOST: frozenset({JobState.RUNNING}),
}


def can_transition(current: JobState, target: JobState) -> bool:
    """Whether a job in ``current`` may move to ``target``."""
    return current in _ENTERED_FROM[target]


def allowed_sources(target: JobState) -> list[str]:
    """The states ``target`` may be entered from, as plain strings (for the Redis scripts)."""
    return sorted(state.value for state in _ENTERED_FROM[target])


def next_attempt_after_loss(attempt: int, safe_to_rerun: bool, max_attempts: int) -> int | None:
    """The attempt to run next when the worker of ``attempt`` vanished, or None to mark it lost.

    Only kinds whose every step is an idempotent "ensure" may run again, and only up to
    ``max_attempts`` in all: a job is never re-run blindly.
    """
    if safe_to_rerun and attempt < max_attempts:
        return attempt + 1
    return None
