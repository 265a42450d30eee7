"""The worker's libvirt connections when libvirtd goes away under them: a restart between jobs
costs no job, and a libvirtd that stops answering fails the call that waits on it instead of
holding the worker's thread forever.

The hypervisor is served by a private libvirtd (the test driver inside the unprivileged session
daemon of :mod:`tests.chaos.daemon_hypervisor`), so it can be restarted and frozen freely."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.daemon_hypervisor import DaemonHypervisor, daemon_hypervisor

HV = "hv-l"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonHypervisor]:
    # The stack's var dir holds the pools it may manage (the confinement default).
    with daemon_hypervisor((tmp_path / "var" / "pools" / "default").resolve()) as hypervisor:
        yield hypervisor


def create_volume(stack, name: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return stack.run("volume.create", HV, pool="default", name=name, capacity="64M")  # type: ignore[no-any-return]


def test_a_job_after_libvirtd_restarted_runs_on_a_fresh_connection(
    make_stack,  # type: ignore[no-untyped-def]
    daemon: DaemonHypervisor,
) -> None:
    # Four worker threads, each with its own connection: every one of them broke.
    stack = make_stack({HV: daemon.uri}, worker_concurrency=4)
    before = [create_volume(stack, f"before-{i}.qcow2") for i in range(4)]
    assert {job["state"] for job in before} == {"succeeded"}

    daemon.restart(0.5)

    after = [create_volume(stack, f"after-{i}.qcow2") for i in range(8)]
    assert [job["state"] for job in after] == ["succeeded"] * 8, [j.get("error") for j in after]
    assert {f"after-{i}.qcow2" for i in range(8)} <= daemon.volumes()


def test_a_frozen_libvirtd_fails_the_waiting_job_within_the_keepalive_bound(
    make_stack,  # type: ignore[no-untyped-def]
    daemon: DaemonHypervisor,
) -> None:
    stack = make_stack({HV: daemon.uri}, libvirt_keepalive_interval=1, libvirt_keepalive_count=2)
    assert create_volume(stack, "warm.qcow2")["state"] == "succeeded"
    pid = daemon.session.process.pid
    assert pid is not None

    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        job = stack.api.submit(
            {
                "kind": "volume.create",
                "hypervisor": HV,
                "params": {"pool": "default", "name": "frozen.qcow2", "capacity": "64M"},
            }
        )
        done = stack.api.wait(job["id"], timeout=60)
        waited = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)

    assert done["state"] == "failed"
    assert "libvirt" in done["error"]["detail"].lower()
    # Keepalive: 1 s x (2 + 1) unanswered probes, plus the worker's reconnect attempt.
    assert waited < 30
    # Once libvirtd answers again, so does the hypervisor.
    assert create_volume(stack, "thawed.qcow2")["state"] == "succeeded"


def test_a_capacity_read_stuck_on_libvirtd_does_not_make_a_busy_worker_look_dead(
    make_stack,  # type: ignore[no-untyped-def]
    daemon: DaemonHypervisor,
) -> None:
    # The heartbeat's libvirt read blocks while libvirtd is frozen, for several liveness
    # periods (1.5 s TTL, 1 s grace); the beat itself goes on, so the job it runs is not lost.
    stack = make_stack({HV: daemon.uri})
    job = stack.submit("ping", HV, delay=6)
    while stack.api.job(job["id"])["state"] != "running":
        time.sleep(0.05)
    pid = daemon.session.process.pid
    assert pid is not None

    os.kill(pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            beats = {item["name"]: item for item in stack.api.get("/v1/hypervisors")["items"]}
            assert beats[HV]["alive"], "the hypervisor was taken for dead"
            time.sleep(0.2)
    finally:
        os.kill(pid, signal.SIGCONT)

    done = stack.api.wait(job["id"], timeout=30)
    assert (done["state"], done["attempt"]) == ("succeeded", 1)
