"""One real stack per test module (API, recorder, a worker on a test-driver hypervisor with a
pool, on the session's redis-server), and the ``orchestrator`` command run as CI runs it: a
process of its own, told where the API is by ``ORCH_API_URL``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.hypervisors.conftest import Node
from tests.support import services
from tests.support.services import RunningStack

ORCHESTRATOR = Path(sys.executable).with_name("orchestrator")
HV = "hv1"
NODE = Node(cpus=8, memory_mib=16384, pools={"default": 100})
# "seq hh:mm:ss level message": one event as the CLI prints it.
EVENT_LINE = re.compile(r"^ *(\d+) (?:\d\d:\d\d:\d\d|--:--:--) (\S+) +(.*)$")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: str) -> Iterator[RunningStack]:
    tmp = tmp_path_factory.mktemp("cli")
    node = tmp / f"{HV}.xml"
    node.write_text(NODE.xml(HV, (tmp / "var" / "pools").resolve()))
    with services.test_stack(tmp, redis_server, {HV: f"test://{node}"}) as running:
        yield running


@dataclass
class Run:
    """A finished ``orchestrator`` process."""

    code: int
    stdout: str
    stderr: str

    def events(self) -> list[tuple[int, str]]:
        """(seq, first line of the message) of each event line on stdout."""
        return [
            (int(m[1]), m[3]) for line in self.stdout.splitlines() if (m := EVENT_LINE.match(line))
        ]


def cli_env(api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"ORCH_API_TOKEN", "ORCH_API_URL"}}
    return {**env, "ORCH_API_URL": api_url}


def start_cli(api_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(ORCHESTRATOR), *args],
        env=cli_env(api_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_cli(api_url: str, *args: str, timeout: float = 180) -> Run:
    done = subprocess.run(
        [str(ORCHESTRATOR), *args],
        env=cli_env(api_url),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def finish(process: subprocess.Popen[str], timeout: float = 180) -> Run:
    stdout, stderr = process.communicate(timeout=timeout)
    return Run(process.returncode, stdout, stderr)


def marker() -> str:
    """A ping message no other test sends: finds this test's jobs in the list."""
    return f"cli-{uuid.uuid4().hex[:12]}"


def jobs_with_message(stack: RunningStack, message: str) -> list[dict[str, Any]]:
    jobs = stack.api.list_jobs({"kind": "ping", "limit": 500})
    return [job for job in jobs if job["params"].get("message") == message]


def until(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """``check()``'s first truthy answer; fails naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (answer := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)
    return answer
