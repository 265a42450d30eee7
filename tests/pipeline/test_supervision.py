"""`orchestrator up` keeps its services running: a killed worker or recorder is started again,
said so on the terminal, and serves jobs again; SIGTERM stops every process it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from orchestrator.client import ApiClient
from orchestrator.db import make_engine, make_sessionmaker
from orchestrator.local.processes import ServiceProcess, free_port, port_open, redis_server
from orchestrator.local.supervisor import MAX_DELAY, Supervisor, restart_delay
from orchestrator.models import Job
from tests.support.services import FAST_LIVENESS

ORCHESTRATOR = Path(sys.executable).with_name("orchestrator")


@dataclass
class Up:
    """A running ``orchestrator up`` and what it printed so far."""

    process: subprocess.Popen[str]
    api: ApiClient
    hypervisor: str
    database_url: str
    lines: list[str] = field(default_factory=list)
    printed: threading.Condition = field(default_factory=threading.Condition)
    started: dict[int, psutil.Process] = field(default_factory=dict)

    def read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.printed:
                self.lines.append(line.rstrip("\n"))
                self.printed.notify_all()

    def wait_for_line(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        with self.printed:
            while True:
                for line in self.lines:
                    if match := re.search(pattern, line):
                        return match
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"`up` never printed {pattern!r}:\n" + self.output())
                self.printed.wait(left)

    def output(self) -> str:
        with self.printed:
            return "\n".join(self.lines)

    def child(self, service: str) -> psutil.Process:
        """The running child of ``up`` that serves ``service`` (``orchestrator SERVICE``)."""
        for child in psutil.Process(self.process.pid).children():
            if child.cmdline()[3:4] == [service]:
                self.remember_children()
                return child
        raise AssertionError(f"`up` has no {service} child")

    def remember_children(self) -> None:
        for child in psutil.Process(self.process.pid).children(recursive=True):
            self.started.setdefault(child.pid, child)

    def wait_hypervisor_served_by(self, pid: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            items = self.api.get("/v1/hypervisors")["items"]
            beat: dict[str, Any] = next((hv for hv in items if hv["name"] == self.hypervisor), {})
            if beat.get("alive") and str(beat.get("worker", "")).endswith(f":{pid}"):
                return
            time.sleep(0.1)
        raise AssertionError(f"no live heartbeat from worker pid {pid}: {items}")

    def recorded_state(self, job_id: str) -> str | None:
        with make_sessionmaker(make_engine(self.database_url))() as session:
            job = session.get(Job, job_id)
            return job.state if job else None


def up_environment(tmp_path: Path, redis_url: str, hypervisor: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    settings = {
        "var_dir": str(tmp_path / "var"),
        "database_url": f"sqlite:///{tmp_path / 'orchestrator.db'}",
        "redis_url": redis_url,
        "api_port": str(free_port()),
        "hypervisor": hypervisor,
        "libvirt_uri": "test:///default",
        **{name: str(value) for name, value in FAST_LIVENESS.items()},
    }
    env.update({f"ORCH_{name.upper()}": value for name, value in settings.items()})
    return env


@pytest.fixture
def up(tmp_path: Path, redis_server: str) -> Iterator[Up]:
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    hypervisor = f"sup-{uuid.uuid4().hex[:8]}"
    env = up_environment(tmp_path, redis_server, hypervisor)
    process = subprocess.Popen(
        [str(ORCHESTRATOR), "up", "--no-flower"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    api = ApiClient(f"http://127.0.0.1:{env['ORCH_API_PORT']}", timeout=30)
    running = Up(process, api, hypervisor, env["ORCH_DATABASE_URL"])
    threading.Thread(target=running.read_output, daemon=True).start()
    try:
        running.wait_for_line("Ctrl-C stops everything", timeout=120)
        running.remember_children()
        yield running
    except BaseException:
        print(running.output())
        raise
    finally:
        _stop(running)


def _stop(up: Up) -> None:
    if up.process.poll() is None:
        up.remember_children()
        up.process.send_signal(signal.SIGTERM)
        try:
            up.process.wait(60)
        except subprocess.TimeoutExpired:
            up.process.kill()
            up.process.wait()
    for child in up.started.values():
        if child.is_running():
            child.kill()


def test_a_killed_worker_and_recorder_are_restarted_and_sigterm_stops_everything(
    up: Up, tmp_path: Path
) -> None:
    worker = up.child("worker")
    up.wait_hypervisor_served_by(worker.pid)
    worker_log = tmp_path / "var" / "logs" / f"worker-{up.hypervisor}.log"

    os.kill(worker.pid, signal.SIGKILL)
    up.wait_for_line(
        rf"worker-{up.hypervisor} \(pid {worker.pid}\) killed by SIGKILL after \d+s; "
        rf"restarting in 1s; log: {re.escape(str(worker_log))}$"
    )
    restarted = up.wait_for_line(rf"worker-{up.hypervisor} restarted \(pid (\d+)\)")
    new_worker = int(restarted[1])
    assert new_worker != worker.pid and up.child("worker").pid == new_worker
    up.wait_hypervisor_served_by(new_worker)
    job = up.api.submit({"kind": "ping", "hypervisor": up.hypervisor}, wait=60)
    assert up.api.wait(job["id"], timeout=60)["state"] == "succeeded"

    recorder = up.child("recorder")
    os.kill(recorder.pid, signal.SIGKILL)
    up.wait_for_line(rf"recorder \(pid {recorder.pid}\) killed by SIGKILL after \d+s")
    new_recorder = int(up.wait_for_line(r"recorder restarted \(pid (\d+)\)")[1])
    assert up.child("recorder").pid == new_recorder
    # Publishing the outbox and persisting the job's end are the recorder's work.
    job = up.api.submit({"kind": "ping", "hypervisor": up.hypervisor}, wait=60)
    assert up.api.wait(job["id"], timeout=60)["state"] == "succeeded"
    deadline = time.monotonic() + 30
    while up.recorded_state(job["id"]) != "succeeded":
        assert time.monotonic() < deadline, "the restarted recorder never recorded the job"
        time.sleep(0.1)

    up.remember_children()
    running = {pid for pid, child in up.started.items() if child.is_running()}
    assert running and running <= set(_processes_with_var_dir(tmp_path / "var"))
    up.process.send_signal(signal.SIGTERM)
    assert up.process.wait(60) == 0
    assert [pid for pid, child in up.started.items() if child.is_running()] == []
    # pgrep also finds processes of this stack that were never seen as children of `up`.
    found = subprocess.run(["pgrep", "-f", up.hypervisor], capture_output=True, text=True)
    assert found.stdout == ""
    assert _processes_with_var_dir(tmp_path / "var") == []


def _processes_with_var_dir(var_dir: Path) -> list[int]:
    """Every process whose environment names this test's ORCH_VAR_DIR: all `up` started."""
    pids = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("ORCH_VAR_DIR") == str(var_dir):
                pids.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return pids


def test_a_killed_redis_comes_back_with_its_data_and_password(tmp_path: Path) -> None:
    port = free_port()
    server = redis_server(
        port, tmp_path / "redis", log_path=tmp_path / "redis.log", password="s3cret-pass"
    ).start()
    lines: list[str] = []
    stop = threading.Event()
    supervisor = threading.Thread(
        target=Supervisor([server], lines.append).run, args=(stop, 0.1), daemon=True
    )
    supervisor.start()
    try:
        client = redis.Redis(port=port, password="s3cret-pass")
        # On disk before the kill, whatever the fsync schedule.
        client.config_set("appendfsync", "always")
        client.set("kept", "across the restart")
        first = server.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while server.pid == first or not port_open(port)():
            assert time.monotonic() < deadline, f"redis not restarted: {lines}"
            time.sleep(0.05)
        after = redis.Redis(port=port, password="s3cret-pass")
        assert after.get("kept") == b"across the restart"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as anonymous:
            anonymous.sendall(b"GET kept\r\n")
            assert anonymous.recv(100).startswith(b"-NOAUTH")
        assert any(f"redis (pid {first}) killed by SIGKILL" in line for line in lines)
    finally:
        stop.set()
        supervisor.join(10)
        server.stop()
    assert not port_open(port)()


def test_a_service_that_keeps_dying_is_retried_with_capped_backoff(tmp_path: Path) -> None:
    service = ServiceProcess("crasher", ["sh", "-c", "exit 3"], log_path=tmp_path / "crasher.log")
    service.start(timeout=None)
    now = 0.0
    lines: list[str] = []
    supervisor = Supervisor([service], lines.append, clock=lambda: now)
    delays = []
    for _ in range(8):
        assert service.process is not None
        service.process.wait(30)
        supervisor.check()
        delay = float(re.findall(r"restarting in (\d+)s", lines[-1])[0])
        delays.append(delay)
        now += delay
        supervisor.check()
        assert re.search(r"crasher restarted \(pid \d+\)", lines[-1])
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert "exited with code 3" in lines[0] and str(tmp_path / "crasher.log") in lines[0]
    # Once up for a while, a death starts the backoff again.
    now += 61
    assert service.process is not None
    service.process.wait(30)
    supervisor.check()
    assert "restarting in 1s" in lines[-1]
    service.stop()


def test_restart_delays_double_up_to_a_cap() -> None:
    assert [restart_delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert restart_delay(10_000) == MAX_DELAY
