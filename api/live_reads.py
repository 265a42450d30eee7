"""Reading a hypervisor's live state through its worker.

The API has no libvirt connection and workers never touch SQL, so a read (pools, volumes,
domains) is a read-only job on the hypervisor's own queue that the request waits for briefly.
The job is kept like any other, which leaves a trace of who looked at what.
"""

from __future__ import annotations

from typing import Any

from api.auth import submitter_name
from api.services import Services, services
from orchestrator.errors import InvalidInput, NotFound, OrchestratorError, Unavailable
from orchestrator.jobs import store as jobstore
from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.submission import JobRequest


class WorkerTimeout(OrchestratorError):
    """Raised when a hypervisor's worker does not finish a read within the time allowed."""

    status = 504
    title = "Worker did not answer in time"


class ReadFailed(OrchestratorError):
    """Raised when the worker ran the read and it failed; carries the job's own problem."""

    def __init__(self, problem: dict[str, Any], job_id: str) -> None:
        super().__init__(problem.get("detail") or "the read failed on the worker")
        self.problem = problem
        self.job_id = job_id
        # A problem without a status came from a crash, not a rule: the upstream failed.
        self.status = int(problem.get("status") or 502)

    def to_problem(self) -> dict[str, Any]:
        return {**self.problem, "status": self.status, "job": self.job_id}


def read_through_worker(
    kind: str, hypervisor: str, params: dict[str, Any], timeout: float = 10
) -> Any:
    """The result of a read-only job ``kind`` run by ``hypervisor``'s worker.

    NotFound when no such hypervisor ever reported, Unavailable (503) when its heartbeat has
    stopped, WorkerTimeout (504) when the job does not finish in ``timeout`` seconds (a job still
    queued is then withdrawn), and the job's own problem when it failed. Parameter errors name
    the field without the ``params.`` prefix: for a read they come from the URL, not a job body.
    """
    job_id = submit_read(kind, hypervisor, params)
    return await_read(job_id, kind, hypervisor, timeout)


def submit_read(
    kind: str, hypervisor: str, params: dict[str, Any], *, rerun_on_loss: bool = True
) -> str:
    """Submit the job to a live hypervisor's worker; its job id. ``rerun_on_loss=False`` for
    a job that cannot be run again (its input was streamed once)."""
    svc = services()
    _require_alive(svc, hypervisor)
    return _submit(svc, kind, hypervisor, params, rerun_on_loss)


def await_read(job_id: str, kind: str, hypervisor: str, timeout: float) -> Any:
    """The result of a submitted read, with the errors ``read_through_worker`` describes."""
    svc = services()
    live = svc.completion.wait(job_id, timeout)
    state = JobState(live["state"]) if live else JobState.PENDING
    if state is JobState.SUCCEEDED:
        return live["result"] if live else None
    if state is JobState.FAILED:
        raise ReadFailed((live or {}).get("error") or {}, job_id)
    if state.is_terminal:
        raise Unavailable(
            f"the {kind} job {job_id} on hypervisor {hypervisor!r} ended {state.value}",
            job=job_id,
        )
    withdrawn = _withdraw(svc, job_id, live)
    raise WorkerTimeout(
        f"the worker of hypervisor {hypervisor!r} did not finish the {kind} read within "
        f"{timeout:g} seconds (job {job_id} was {state.value}"
        f"{'; withdrawn' if withdrawn else ''}); it may be busy or stuck, try again later",
        job=job_id,
    )


def _require_alive(svc: Services, hypervisor: str) -> None:
    known = {hv["name"]: hv for hv in svc.live.hypervisors()}
    if hypervisor not in known:
        raise NotFound(f"no hypervisor {hypervisor!r} has ever reported")
    if not known[hypervisor]["alive"]:
        # Submitting would only leave a job queued for a worker that is gone.
        raise Unavailable(
            f"the worker of hypervisor {hypervisor!r} has stopped sending heartbeats; "
            "its live state cannot be read until it is back"
        )


def _submit(
    svc: Services, kind: str, hypervisor: str, params: dict[str, Any], rerun_on_loss: bool
) -> str:
    on_lost = None if rerun_on_loss else "fail"
    job_request = JobRequest(
        kind=kind, params=params, hypervisor=hypervisor, on_worker_lost=on_lost
    )
    try:
        job, _ = svc.submitter.submit(job_request, submitter_name(), None)
    except InvalidInput as exc:
        raise _as_query_errors(exc) from None
    return job.id


def _as_query_errors(exc: InvalidInput) -> InvalidInput:
    errors = [
        {**error, "field": error["field"].removeprefix("params.")}
        for error in exc.extra.get("errors", [])
    ]
    return InvalidInput(exc.detail, **{**exc.extra, "errors": errors})


def _withdraw(svc: Services, job_id: str, live: dict[str, Any] | None) -> bool:
    """Cancel the read if no worker has started it; nobody waits for its answer any more."""
    state = JobState(live["state"]) if live else JobState.PENDING
    if state not in (JobState.PENDING, JobState.QUEUED):
        return False
    attempt = int((live or {}).get("attempt", 1))
    svc.live.finish(job_id, attempt, JobState.CANCELLED, "cancelled: the reader stopped waiting")
    with svc.sessions() as session:
        jobstore.cancel_pending(session, job_id)
    return True
