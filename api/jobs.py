"""``/v1/jobs``: submit, read, list, follow events, cancel."""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, Response, jsonify, request
from sqlalchemy.orm import Session

from api.audit import note_job
from api.auth import acts_on_any_domain, check_owner, check_scope, requires, submitter_name
from api.event_stream import event_stream, resume_point, wants_stream
from api.fleet import admit_fleet_job
from api.requests import float_arg, idempotency_key, int_arg, json_body
from api.services import services
from orchestrator.access.scopes import FLEET_EXEC, JOBS_READ, JOBS_SUBMIT, submit_scope
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.jobs import store as jobstore
from orchestrator.jobs.events import Event
from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.livestate import Family
from orchestrator.jobs.submission import JobRequest
from orchestrator.jobs.view import job_document, live_document
from orchestrator.models import Job

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")

MAX_WAIT_SECONDS = 300.0
UNFINISHED = frozenset(s.value for s in JobState if not s.is_terminal)
# Query argument -> job column.
_FILTERS = {"state": "state", "kind": "kind", "hypervisor": "hypervisor", "parent": "parent_id"}


@bp.post("")
@requires(JOBS_SUBMIT, FLEET_EXEC)
def submit() -> tuple[Response, int, dict[str, str]]:
    job_request = JobRequest.parse(json_body())
    note_job(None, job_request.kind)
    # Which of the two scopes depends on the kind: fleet jobs need fleet:exec.
    check_scope(submit_scope(job_request.kind))
    job_request = admit_fleet_job(job_request)
    if request.args.get("dry_run") == "true":
        return jsonify(services().submitter.dry_run(job_request)), 200, {}
    wait = float_arg("wait", 0.0, maximum=MAX_WAIT_SECONDS)
    # Idempotency keys are unique per submitter, so per token when tokens are on.
    key = idempotency_key()
    job, created = services().submitter.submit(
        job_request, submitter_name(), key, own_domains_only=not acts_on_any_domain()
    )
    note_job(job.id, job.kind)
    headers = {"Location": f"/v1/jobs/{job.id}"}
    if wait:
        # POST and wait in one request, as CI does: 200 once finished, 202 if still going.
        document = job_document(job, _live(job.id, wait), _flower())
        finished = JobState(document["state"]).is_terminal
        return jsonify(document), 200 if finished else 202, headers
    # A new job's document is the one just written; an earlier job's may have moved on.
    document = job_document(job, None, _flower()) if created else _document(job)
    return jsonify(document), 202 if created else 200, headers


@bp.get("/<job_id>")
@requires(JOBS_READ)
def show(job_id: str) -> Response:
    """One job; ``?wait=SECONDS`` holds the answer until the job finishes (CI's POST-and-wait)."""
    wait = float_arg("wait", 0.0, maximum=MAX_WAIT_SECONDS)
    return jsonify(_current_document(job_id, wait))


def _current_document(job_id: str, wait: float = 0.0) -> dict[str, Any]:
    # A job Redis does not know (or Redis down) comes back at once, unwaited: SQL answers.
    live = _live(job_id, wait)
    document = live_document(live, _flower())
    if document is not None:
        return document
    with services().sessions() as session:
        job = jobstore.get_job(session, job_id)
    return job_document(job, live, _flower())


@bp.get("")
@requires(JOBS_READ)
def index() -> Response:
    """Jobs newest first, each in the state ``GET /v1/jobs/<id>`` shows at that moment, and
    ``?state=`` filters on that state, not on the recorder's copy (docs/api.md: reads agree)."""
    limit = int_arg("limit", 50, minimum=1, maximum=500)
    filters = {
        column: request.args[arg] for arg, column in _FILTERS.items() if request.args.get(arg)
    }
    state = filters.pop("state", None)
    if state is not None and state not in {s.value for s in JobState}:
        states = ", ".join(s.value for s in JobState)
        raise InvalidInput(
            f"unknown state {state!r}",
            errors=[{"field": "state", "message": f"must be one of: {states}"}],
        )
    with services().sessions() as session:
        items, cursor = _page(session, filters, state, request.args.get("cursor"), limit)
    return jsonify({"items": items, "next_cursor": cursor})


def _page(
    session: Session, filters: dict[str, str], state: str | None, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of job documents. SQL trails Redis, so a job recorded in any state not yet
    final may be in ``state`` now: those are read too, and kept when their live state is it.
    Pages walk by creation (job ids), so state changes while walking skip and repeat none."""
    candidates = None if state is None else {state, *UNFINISHED}
    items: list[dict[str, Any]] = []
    while True:
        jobs, following = jobstore.list_jobs(
            session, filters=filters, cursor=cursor, limit=limit, states=candidates
        )
        lives = _lives([job.id for job in jobs])
        for job in jobs:
            document = job_document(job, lives.get(job.id), _flower())
            if state is None or document["state"] == state:
                items.append(document)
                if len(items) == limit:
                    more = following is not None or job is not jobs[-1]
                    return items, jobstore.encode_cursor(job.id) if more else None
        if following is None:
            return items, None
        cursor = following


def _flower() -> str | None:
    return services().settings.flower_url


def _lives(job_ids: list[str]) -> dict[str, dict[str, Any] | None]:
    try:
        return services().live.jobs(job_ids)
    except redis.RedisError:
        return {}  # Redis down: SQL alone answers


@bp.get("/<job_id>/events")
@requires(JOBS_READ)
def events(job_id: str) -> Response:
    """The job's events after ``?after=N``: a JSON page, or with ``Accept: text/event-stream``
    a stream of them as they come (see api/event_stream.py)."""
    after = int_arg("after", 0)
    limit = int_arg("limit", 1000, minimum=1, maximum=10000)
    svc = services()
    if wants_stream():
        with svc.sessions() as session:
            jobstore.get_job(session, job_id)
        return event_stream(job_id, resume_point(after), lambda: _current_document(job_id))
    with svc.sessions() as session:
        jobstore.get_job(session, job_id)
        live = _live_events(job_id, after, limit)
        if live is not None:
            items = [event.document() for event in live]
        else:
            rows = jobstore.list_events(session, job_id, after, limit)
            items = [Event.from_row(row).document() for row in rows]
    return jsonify({"items": items, "last_seq": items[-1]["seq"] if items else after})


@bp.post("/<job_id>/cancel")
@requires(JOBS_SUBMIT, FLEET_EXEC)
def cancel(job_id: str) -> tuple[Response, int]:
    """Withdraw a job that has not started; ask a running one to stop. A count request's
    parent does so for each of its children not yet done, and ends when they have."""
    svc = services()
    with svc.sessions() as session:
        job = jobstore.get_job(session, job_id)
        note_job(job.id, job.kind)
        check_owner(job.submitter, "cancel")
        state = JobState(_document(job)["state"])
        if state.is_terminal:
            raise Conflict(f"job {job_id} already {state.value}")
        children = jobstore.children_of(session, job.id)
        family = (job.id, len(children))
        if children:
            # The parent ends cancelled, though children stopped while running end failed.
            svc.live.request_cancel(job.id)
        targets = [(child, family) for child in children] if children else [(job, None)]
        stopping = [_withdraw_or_stop(session, target, fam) for target, fam in targets]
    doc = _document(job)
    if any(stopping):
        return jsonify({**doc, "cancel_requested": True}), 202
    return jsonify(doc), 200


def _withdraw_or_stop(session: Session, job: Job, family: Family | None) -> bool:
    """Cancel ``job`` if it has not started; ask it to stop if it runs (returns True)."""
    svc = services()
    doc = job_document(job, _live(job.id), _flower())
    state = JobState(doc["state"])
    if state.is_terminal:
        return False
    # The stop request goes first: a worker that claims the job between the read above and
    # the withdrawal below finds it at its first check, and the withdrawal is then refused.
    svc.live.request_cancel(job.id)
    if state is JobState.RUNNING:
        return True
    withdrawn = svc.live.finish(
        job.id, doc["attempt"], JobState.CANCELLED, "cancelled", family=family
    )
    if withdrawn.seq is None and withdrawn.current_state == JobState.RUNNING.value:
        return True  # it started meanwhile: it stops instead
    jobstore.cancel_pending(session, job.id)
    return False


def _document(job: Job) -> dict[str, Any]:
    return job_document(job, _live(job.id), _flower())


def _live(job_id: str, wait: float = 0.0) -> dict[str, Any] | None:
    """The job's live state, once finished when ``wait`` > 0; None when Redis is down."""
    try:
        if wait:
            return services().completion.wait(job_id, wait)
        return services().live.job(job_id)
    except redis.RedisError:
        return None  # Redis down: SQL alone answers


def _live_events(job_id: str, after: int, limit: int) -> list[Event] | None:
    try:
        return services().live.events(job_id, after, limit)
    except redis.RedisError:
        return None
