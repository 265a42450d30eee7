"""The anchor: the Flask + Celery app every tutorial writes. No SQL, no outbox, no claim.

POST /tasks calls ``apply_async`` and returns the task id; GET /tasks/<id> reads ``AsyncResult``.
Clients poll it. (``AsyncResult.get`` from many threads of one process is not safe with the
Redis result backend, so tutorials poll, and so does the benchmark's client for this app.)
"""

from __future__ import annotations

import os
import socket

from celery import Celery
from flask import Flask, jsonify

celery = Celery(
    "naive", broker=os.environ["NAIVE_REDIS_URL"], backend=os.environ["NAIVE_REDIS_URL"]
)
celery.conf.update(
    task_default_queue="naive", task_track_started=True, worker_prefetch_multiplier=1
)


@celery.task(name="naive.ping")
def ping() -> dict[str, object]:
    return {"message": "pong", "worker": socket.gethostname(), "pid": os.getpid()}


app = Flask(__name__)


@app.post("/tasks")
def submit():  # type: ignore[no-untyped-def]
    result = ping.apply_async()
    return jsonify({"id": result.id}), 202


@app.get("/tasks/<task_id>")
def show(task_id: str):  # type: ignore[no-untyped-def]
    result = celery.AsyncResult(task_id)
    return jsonify({"id": task_id, "state": result.state, "result": result.result})
