"""The lifecycle's transitions and re-run rule, as pure functions."""

import pytest

from orchestrator.jobs.lifecycle import JobState, can_transition, next_attempt_after_loss


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (JobState.PENDING, JobState.QUEUED),
        (JobState.QUEUED, JobState.RUNNING),
        (JobState.RUNNING, JobState.SUCCEEDED),
        (JobState.RUNNING, JobState.FAILED),
        (JobState.RUNNING, JobState.LOST),
        (JobState.RUNNING, JobState.QUEUED),
        (JobState.QUEUED, JobState.CANCELLED),
    ],
)
def test_allowed_transitions(current: JobState, target: JobState) -> None:
    assert can_transition(current, target)


@pytest.mark.parametrize("terminal", [s for s in JobState if s.is_terminal])
@pytest.mark.parametrize("target", list(JobState))
def test_a_finished_job_never_changes_state(terminal: JobState, target: JobState) -> None:
    assert not can_transition(terminal, target)


def test_a_running_job_cannot_be_cancelled_by_state_change_alone() -> None:
    assert not can_transition(JobState.RUNNING, JobState.CANCELLED)


def test_only_kinds_safe_to_rerun_get_another_attempt_and_only_up_to_the_limit() -> None:
    assert next_attempt_after_loss(1, safe_to_rerun=True, max_attempts=2) == 2
    assert next_attempt_after_loss(2, safe_to_rerun=True, max_attempts=2) is None
    assert next_attempt_after_loss(1, safe_to_rerun=False, max_attempts=5) is None
