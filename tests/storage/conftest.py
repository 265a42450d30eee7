"""Fixtures for the storage tests: storage jobs run by the worker's own job runner, on a private
test-driver hypervisor or on the real libvirtd, and a throwaway directory pool there."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest

from orchestrator.jobs.livestate import LiveState, job_stream
from orchestrator.settings import Settings
from workers.runner import WorkerRuntime, run_attempt

HYPERVISOR = "storage-test"


def new_job_id() -> str:
    return f"job-{uuid.uuid4().hex[:12]}"


def worker_runtime(libvirt_uri: str, redis_url: str, var_dir: Path) -> WorkerRuntime:
    """What a worker process builds at start, for one hypervisor on ``libvirt_uri``."""
    settings = Settings(
        hypervisor=HYPERVISOR,
        libvirt_uri=libvirt_uri,
        redis_url=redis_url,
        var_dir=var_dir,
        upload_source_dirs=[Path("/tmp")],  # test images are written under pytest's tmp_path
        # Test pools live under pytest's tmp_path; the test driver's pools at their own paths.
        pool_roots=[Path("/tmp"), Path("/default-pool"), Path("/extra-pool"), Path("/elsewhere")],
    )
    return WorkerRuntime.from_settings(settings)


@dataclass(frozen=True)
class FinishedJob:
    """A job as whoever submitted it reads it back once the worker is done with it."""

    id: str
    attempt: int
    state: str
    result: Any
    error: dict[str, Any] | None
    messages: list[str]


class WorkerJobs:
    """Runs storage jobs through :func:`workers.runner.run_attempt`, which the worker's Celery
    task calls for every delivered message: the compare-and-set claim on (job id, attempt), the
    parameters parsed again, the handler, the undo of what a failed attempt created, and the
    finish with its result or problem, all written to the job's live state in Redis."""

    def __init__(self, runtime: WorkerRuntime) -> None:
        self.runtime = runtime
        self.last_job_id = ""

    @property
    def live(self) -> LiveState:
        return self.runtime.live

    def running_message(self, attempt: int = 1) -> str:
        """The event the claim writes."""
        return f"running on {HYPERVISOR}/{self.runtime.name} (attempt {attempt})"

    def submit(
        self, kind: str, params: dict[str, Any], job_id: str | None = None, attempt: int = 1
    ) -> FinishedJob:
        """Deliver one attempt of a job to the runner and read the job back."""
        job_id = job_id or new_job_id()
        self.last_job_id = job_id
        outcome = run_attempt(self.runtime, job_id, attempt, kind, params)
        assert "skipped" not in outcome, f"{job_id} attempt {attempt} did not run: {outcome}"
        return self.read(job_id)

    def read(self, job_id: str) -> FinishedJob:
        job = self.live.job(job_id)
        assert job is not None, f"{job_id} has no live state"
        return FinishedJob(
            job_id, job["attempt"], job["state"], job["result"], job["error"], self.messages(job_id)
        )

    def run(self, kind: str, params: dict[str, Any], job_id: str | None = None) -> dict[str, Any]:
        """The result of a job that must succeed."""
        job = self.submit(kind, params, job_id)
        assert job.state == "succeeded", job.error
        return dict(job.result)

    def fail(
        self,
        kind: str,
        params: dict[str, Any],
        problem: str,
        match: str | None = None,
        job_id: str | None = None,
    ) -> dict[str, Any]:
        """The problem a job that must fail ends with: of type ``problem`` (``conflict``,
        ``invalid-input``, ``not-found``, ``job-failed``), its detail matching ``match``."""
        job = self.submit(kind, params, job_id)
        assert job.state == "failed", job.result
        assert job.error is not None
        assert job.error["type"] == f"urn:orchestrator:problem:{problem}", job.error
        if match is not None:
            assert re.search(match, job.error["detail"]), job.error["detail"]
        return job.error

    def run_next_attempt(self, job_id: str, kind: str, params: dict[str, Any]) -> FinishedJob:
        """Queue and run the job's next attempt, as the recorder does for a job whose worker
        vanished (storage kinds are safe to run again)."""
        job = self.live.job(job_id)
        assert job is not None, f"{job_id} has no live state"
        attempt = job["attempt"] + 1
        queued = self.live.mark_queued(job_id, attempt, kind, HYPERVISOR, "its worker vanished")
        assert queued.seq is not None, queued
        return self.submit(kind, params, job_id, attempt)

    def messages(self, job_id: str | None = None) -> list[str]:
        """The messages of the job's events, in order, as the API shows them."""
        entries = self.live.redis.xrange(job_stream(job_id or self.last_job_id))
        return [fields["message"] for _, fields in entries]


StartWorker = Callable[[str], WorkerJobs]


@pytest.fixture
def worker_jobs(redis_server: str, tmp_path: Path) -> Iterator[StartWorker]:
    """Factory: a worker's runtime on a libvirt URI, closed after the test."""
    runtimes: list[WorkerRuntime] = []

    def start(libvirt_uri: str) -> WorkerJobs:
        runtime = worker_runtime(libvirt_uri, redis_server, tmp_path / "var")
        runtimes.append(runtime)
        return WorkerJobs(runtime)

    yield start
    for runtime in runtimes:
        runtime.connector.close()
        runtime.live.redis.close()


# A test-driver hypervisor with one 100 GiB directory pool. A node file gives every connection
# its own state; ``test:///default`` would share volumes between tests in this process.
TEST_NODE_XML = """<node>
  <pool type='dir'>
    <name>default-pool</name>
    <capacity unit='bytes'>107374182400</capacity>
    <allocation unit='bytes'>0</allocation>
    <available unit='bytes'>107374182400</available>
    <target><path>/default-pool</path></target>
  </pool>
</node>
"""


@pytest.fixture
def test_jobs(tmp_path: Path, worker_jobs: StartWorker) -> WorkerJobs:
    """Jobs on a private test-driver hypervisor (pool ``default-pool`` at /default-pool)."""
    node = tmp_path / "node.xml"
    node.write_text(TEST_NODE_XML)
    return worker_jobs(f"test://{node}")


@pytest.fixture
def qemu_jobs(qemu_uri: str, worker_jobs: StartWorker) -> WorkerJobs:
    """Jobs on the real libvirtd."""
    return worker_jobs(qemu_uri)


@dataclass(frozen=True)
class DirPool:
    name: str
    path: Path
    pool: libvirt.virStoragePool


@pytest.fixture
def dir_pool(qemu_conn: libvirt.virConnect, tmp_path: Path) -> Iterator[DirPool]:
    """A running directory pool with a unique name in a temporary directory on the real libvirtd."""
    name = f"test-storage-{uuid.uuid4().hex[:10]}"
    path = tmp_path / "pool"
    path.mkdir()
    xml = f"<pool type='dir'><name>{name}</name><target><path>{path}</path></target></pool>"
    pool = qemu_conn.storagePoolDefineXML(xml, 0)
    try:
        pool.create(0)
        yield DirPool(name, path, pool)
    finally:
        if pool.isActive():
            pool.destroy()
        pool.undefine()
        shutil.rmtree(path, ignore_errors=True)
