"""The job and event documents the API returns: the SQL record overlaid with live Redis state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from orchestrator.jobs.events import as_utc
from orchestrator.models import Job

_LIVE_FIELDS = ("state", "attempt", "worker", "result", "error")


def job_summary(job: Job) -> dict[str, Any]:
    """The fields of a job that never change after it was stored.

    A copy travels with the job into Redis, so the API can answer for a live job from Redis
    alone, without a SQL read.
    """
    return {
        "id": job.id,
        "kind": job.kind,
        "params": job.params,
        # A count request's parent runs nowhere; its children say where they went.
        "hypervisor": job.hypervisor or None,
        "parent_id": job.parent_id,
        "submitter": job.submitter,
        "idempotency_key": job.idempotency_key,
        "on_worker_lost": "rerun" if job.rerun_on_loss else "fail",
        "created_at": _iso(job.created_at),
    }


def job_document(
    job: Job, live: dict[str, Any] | None, flower_url: str | None = None
) -> dict[str, Any]:
    """One job as the API shows it. Redis is newer than SQL while the recorder catches up.
    With ``flower_url``, its links name the job's task in Flower."""
    recorded = {
        "state": job.state,
        "attempt": job.attempt,
        "worker": job.worker,
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "result": job.result,
        "error": job.error,
    }
    newer = live if live and live.get("seq", 0) > job.last_seq and "state" in live else None
    return _document(job_summary(job), recorded, newer, live, flower_url)


def live_document(
    live: dict[str, Any] | None, flower_url: str | None = None
) -> dict[str, Any] | None:
    """The job's document from its live state alone, when that carries the job's summary."""
    if not live or not live.get("summary") or "state" not in live:
        return None
    return _document(
        live["summary"],
        {"worker": None, "started_at": None, "finished_at": None, "result": None, "error": None},
        live,
        live,
        flower_url,
    )


def _document(
    summary: dict[str, Any],
    recorded: dict[str, Any],
    live: dict[str, Any] | None,
    counters: dict[str, Any] | None,
    flower_url: str | None = None,
) -> dict[str, Any]:
    """``live`` overrides what SQL recorded (when newer); ``counters`` is the live state as
    read, whose children counters a parent shows even when SQL has caught up."""
    doc = {**summary, **recorded}
    if live is not None:
        doc.update({name: live.get(name, doc.get(name)) for name in _LIVE_FIELDS})
        doc["started_at"] = _iso_epoch(live.get("started_at")) or doc["started_at"]
        doc["finished_at"] = _iso_epoch(live.get("finished_at")) or doc["finished_at"]
    job_id = summary["id"]
    doc["links"] = {"self": f"/v1/jobs/{job_id}", "events": f"/v1/jobs/{job_id}/events"}
    if summary.get("parent_id"):
        doc["links"]["parent"] = f"/v1/jobs/{summary['parent_id']}"
    if flower_url and summary.get("hypervisor"):  # a count's parent runs no task
        doc["links"]["flower"] = f"{flower_url.rstrip('/')}/task/{job_id}"
    count = (summary.get("params") or {}).get("count")
    if count is not None and not summary.get("parent_id"):
        doc["children"] = children_summary(count, counters, doc.get("result"))
        doc["links"]["children"] = f"/v1/jobs?parent={job_id}"
    return doc


def children_summary(
    count: int, live: dict[str, Any] | None, result: dict[str, Any] | None
) -> dict[str, int]:
    """How a parent's children stand: from the live counters its children keep, or from its
    result once Redis has forgotten it."""
    outcomes = ("succeeded", "failed", "cancelled", "lost")
    if live is not None and "children_done" in live:
        counts = {name: int(live.get(f"children_{name}", 0)) for name in outcomes}
    elif isinstance(result, dict):
        counts = {name: int(result.get(name, 0)) for name in outcomes}
    else:
        counts = dict.fromkeys(outcomes, 0)
    return {"count": count, "done": sum(counts.values()), **counts}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def _iso_epoch(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value, UTC).isoformat()
