"""Fixtures for the storage tests: a private redis-server for job events, a harness that runs a
storage handler the way the job runner does, and a throwaway directory pool on the real libvirtd."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import libvirt
import pytest
import redis

from orchestrator.jobs.livestate import LiveState
from orchestrator.kinds import get_kind, parse_params
from orchestrator.settings import Settings
from workers.context import JobContext
from workers.handlers import HANDLERS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def storage_live() -> Iterator[LiveState]:
    """A redis-server on a free loopback port for this package's job events."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    port = _free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.02)
        yield LiveState(client)
    finally:
        client.close()
        server.terminate()
        server.wait(10)


@dataclass
class JobHarness:
    """Runs storage jobs on one libvirt connection as the job runner does: validate the
    parameters, call the handler, undo what it created when it fails."""

    conn: libvirt.virConnect
    live: LiveState
    last_job_id: str = ""

    @cached_property
    def settings(self) -> Settings:
        # Test images are written under /tmp (pytest's tmp_path).
        return Settings(
            hypervisor="t", libvirt_uri=self.conn.getURI(), upload_source_dirs=[Path("/tmp")]
        )

    def run(self, kind: str, params: dict[str, Any], job_id: str | None = None) -> dict[str, Any]:
        job_id = job_id or f"job-{uuid.uuid4().hex[:12]}"
        self.last_job_id = job_id
        ctx = JobContext(job_id, 1, kind, self.settings, self.live, lambda: self.conn)
        try:
            result = HANDLERS[kind](ctx, parse_params(get_kind(kind), params))
        except Exception:
            ctx.undo_created()
            raise
        ctx.keep_created()
        return dict(result)

    def messages(self, job_id: str | None = None) -> list[str]:
        events = self.live.events(job_id or self.last_job_id) or []
        return [event["message"] for event in events]


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
def test_jobs(tmp_path: Path, storage_live: LiveState) -> Iterator[JobHarness]:
    """Jobs on a private test-driver hypervisor (pool ``default-pool`` at /default-pool)."""
    node = tmp_path / "node.xml"
    node.write_text(TEST_NODE_XML)
    conn = libvirt.open(f"test://{node}")
    yield JobHarness(conn, storage_live)
    conn.close()


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


@pytest.fixture
def qemu_jobs(qemu_conn: libvirt.virConnect, storage_live: LiveState) -> JobHarness:
    return JobHarness(qemu_conn, storage_live)
