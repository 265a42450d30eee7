"""``/v1/hypervisors/<name>/pools`` and ``.../volumes``: storage as the hypervisor sees it now,
read through its worker. ``?wait=SECONDS`` (default 10, at most 60) bounds the wait for it.

``PUT .../pools/<pool>/volumes/<volume>/content`` imports the request body as a volume: a
``volume.upload`` job whose content streams through Redis to the hypervisor's worker."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.audit import note_job
from api.auth import requires
from api.live_reads import ReadFailed, WorkerTimeout, read_through_worker, submit_read
from api.requests import float_arg
from api.services import services
from orchestrator.access.scopes import JOBS_READ, JOBS_SUBMIT
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.jobs.content_pipe import CHUNK_BYTES, ContentStopped, binary_client, send_content
from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.view import live_document

bp = Blueprint("storage", __name__, url_prefix="/v1/hypervisors")

DEFAULT_WAIT_SECONDS = 10.0
MAX_WAIT_SECONDS = 60.0
UPLOAD_WAIT_SECONDS = 300.0  # after the last byte: the import and the checks on the worker


@bp.get("/<name>/pools")
@requires(JOBS_READ)
def pools(name: str) -> Response:
    """Storage pools with capacity, allocation and available bytes."""
    return _read("pool.list", name, {})


@bp.get("/<name>/pools/<pool>/volumes")
@requires(JOBS_READ)
def pool_volumes(name: str, pool: str) -> Response:
    """The volumes of one pool."""
    return _read("volume.list", name, {"pool": pool})


@bp.get("/<name>/volumes")
@requires(JOBS_READ)
def volumes(name: str) -> Response:
    """The volumes of the pool named by ``?pool=``."""
    pool = request.args.get("pool")
    if not pool:
        message = "is required: the pool whose volumes to list"
        raise InvalidInput(
            f"query parameter 'pool' {message}", errors=[{"field": "pool", "message": message}]
        )
    return _read("volume.list", name, {"pool": pool})


def _read(kind: str, hypervisor: str, params: dict[str, Any]) -> Response:
    wait = float_arg("wait", DEFAULT_WAIT_SECONDS, maximum=MAX_WAIT_SECONDS)
    return jsonify(read_through_worker(kind, hypervisor, params, timeout=wait))


@bp.put("/<name>/pools/<pool>/volumes/<volume>/content")
@requires(JOBS_SUBMIT)
def upload_content(name: str, pool: str, volume: str) -> tuple[Response, int, dict[str, str]]:
    """Import the request body as volume ``volume`` (``curl -T image.qcow2 ...``).

    ``?sha256=`` (required) is checked on the worker before anything is created; ``?format=``
    (qcow2 or raw) is the expected format. The answer comes when the job ends: 201 with the
    job when it made the volume, 200 when an identical one was there, the job's problem when
    it failed, or 202 with its ``Location`` when it is still running after ``?wait=``. A
    worker that does not start reading in time is a 504 (the job then fails on its own).
    """
    svc = services()
    # The body is read as it arrives: image content has its own limit, not the JSON one.
    request.max_content_length = svc.settings.max_upload_bytes
    if (request.content_length or 0) > svc.settings.max_upload_bytes:
        raise RequestEntityTooLarge()  # before a job exists
    params: dict[str, object] = {"pool": pool, "name": volume, "content_from_api": True}
    if request.content_length is not None:
        params["content_length"] = request.content_length
    params.update({key: request.args[key] for key in ("sha256", "format") if key in request.args})
    wait = float_arg("wait", UPLOAD_WAIT_SECONDS, maximum=UPLOAD_WAIT_SECONDS)
    # The content is streamed once: a worker lost mid-job must not start over on half of it.
    job_id = submit_read("volume.upload", name, params, rerun_on_loss=False)
    note_job(job_id, "volume.upload")

    def worker_gone() -> bool:
        state = svc.live.state(job_id)
        return state is not None and state.is_terminal

    client = binary_client(svc.settings.resolved_redis_url)
    try:
        send_content(
            client, job_id, iter(lambda: request.stream.read(CHUNK_BYTES), b""), worker_gone
        )
    except ContentStopped as exc:
        if not worker_gone():  # nobody read: the worker is busy or gone
            raise WorkerTimeout(str(exc), job=job_id) from None
        # Otherwise the job ended early (a missing pool, say): its outcome is the answer.
    finally:
        client.close()
    return _upload_answer(job_id, svc.completion.wait(job_id, wait))


def _upload_answer(
    job_id: str, live: dict[str, Any] | None
) -> tuple[Response, int, dict[str, str]]:
    headers = {"Location": f"/v1/jobs/{job_id}"}
    state = JobState(live["state"]) if live else JobState.PENDING
    if state.is_terminal and state is not JobState.SUCCEEDED:
        ended = Conflict(f"the upload job {job_id} ended {state.value}")
        error = (live or {}).get("error") or ended.to_problem()
        raise ReadFailed(error, job_id)
    document = live_document(live) or {"id": job_id, "state": state.value}
    if state is not JobState.SUCCEEDED:
        return jsonify(document), 202, headers
    changed = bool(((live or {}).get("result") or {}).get("changed"))
    return jsonify(document), 201 if changed else 200, headers
