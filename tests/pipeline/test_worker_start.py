"""A worker starts only when it can run every job kind the API accepts."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from orchestrator.kinds import KINDS
from workers.handlers import HANDLERS, check_every_kind_handled


def test_every_job_kind_has_a_handler() -> None:
    check_every_kind_handled()
    assert set(HANDLERS) == set(KINDS)


def test_a_worker_refuses_to_start_with_a_kind_it_cannot_run() -> None:
    # A kind registered without a handler, as a new kind would be if its handler module were
    # forgotten; the real CLI command then starts the worker.
    script = textwrap.dedent(
        """
        import sys
        from orchestrator.kinds.registry import JobParams, job_kind

        @job_kind("volume.snapshot", "a kind no worker module handles")
        class SnapshotParams(JobParams):
            pass

        from orchestrator.cli import main
        sys.argv = ["orchestrator", "worker", "--hypervisor", "hv-unhandled"]
        main()
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={"ORCH_REDIS_URL": "redis://127.0.0.1:1/0", "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode != 0
    assert "worker not started: no handler for job kinds: volume.snapshot" in run.stderr
    assert "Traceback" not in run.stderr
