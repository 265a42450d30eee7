"""Re-running an earlier fleet job on the hosts that failed, were unreachable, or both, as
``ansible-playbook --limit @retry`` does: the new job is a plain ``fleet.run`` (or
``fleet.ping``) with the earlier job's parameters, the same inventory text and hypervisor, and
``limit`` listing those hosts. Reads the earlier job from SQL (overlaid with its live state in
Redis, which is newer while the recorder catches up), so it runs in the API."""

from __future__ import annotations

from typing import Any, Literal

import redis
from sqlalchemy.orm import Session

from orchestrator.errors import Conflict
from orchestrator.fleet.admission import FLEET_KINDS
from orchestrator.jobs import store as jobstore
from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.livestate import LiveState
from orchestrator.jobs.submission import JobRequest
from orchestrator.jobs.view import job_document

Which = Literal["failed", "unreachable", "both"]

_STATUSES: dict[str, frozenset[str]] = {
    "failed": frozenset({"failed"}),
    "unreachable": frozenset({"unreachable"}),
    "both": frozenset({"failed", "unreachable"}),
}


def relaunch_request(
    session: Session, live: LiveState, job_id: str, which: Which = "both"
) -> JobRequest:
    """The request of a new job re-running ``job_id`` on its ``which`` hosts."""
    job = jobstore.get_job(session, job_id)
    try:
        current = live.job(job_id)
    except redis.RedisError:
        current = None  # Redis down: the SQL record alone answers
    return relaunch_of(job_document(job, current), which)


def relaunch_of(job: dict[str, Any], which: Which = "both") -> JobRequest:
    """Pure part of :func:`relaunch_request`: from the earlier job's document (as the API
    shows it) to the new request."""
    job_id, kind, state = job["id"], job["kind"], job["state"]
    if kind not in FLEET_KINDS:
        raise Conflict(f"job {job_id} is a {kind} job; only fleet jobs can be relaunched")
    if not JobState(state).is_terminal:
        raise Conflict(f"job {job_id} is still {state}; relaunch it once it has finished")
    hosts = [
        host
        for host, result in _host_results(job).items()
        if result.get("status") in _STATUSES[which]
    ]
    if not hosts:
        raise Conflict(f"job {job_id} has no {_said(which)} hosts to run again")
    params: dict[str, Any] = {
        **job["params"],
        # A trailing comma keeps a single name with ':' from being read as a pattern list.
        "limit": ",".join(hosts) + ",",
        "relaunch_of": job_id,
    }
    return JobRequest(kind=kind, params=params, hypervisor=job["hypervisor"])


def _host_results(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-host results of a finished fleet job: in its result, or in its error's result."""
    result, error = job.get("result"), job.get("error")
    summary = result if isinstance(result, dict) else None
    if summary is None and isinstance(error, dict):
        summary = error.get("result")
    hosts = summary.get("hosts") if isinstance(summary, dict) else None
    if not isinstance(hosts, dict):
        raise Conflict(f"job {job['id']} ({job['state']}) has no per-host results to relaunch from")
    return hosts


def _said(which: Which) -> str:
    return "failed or unreachable" if which == "both" else which
