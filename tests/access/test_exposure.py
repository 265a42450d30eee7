"""``orchestrator api`` refuses, in one line, to listen beyond loopback with no token configured,
or with a bootstrap token naming an unknown scope; ``api_insecure`` lets it listen anyway."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from orchestrator.access.exposure import is_loopback
from orchestrator.db import upgrade
from orchestrator.local.processes import free_port
from orchestrator.local.stack import child_env
from orchestrator.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database_url=database_url,
        redis_url="redis://127.0.0.1:1/0",  # never reached: the API refuses before serving
        api_host="0.0.0.0",
        api_port=free_port(),
        api_workers=1,
    )


def start_api(settings: Settings, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "api"],
        env=child_env(settings, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def launched() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def test_no_token_beyond_loopback_is_a_one_line_refusal(
    settings: Settings, launched: list[subprocess.Popen[str]]
) -> None:
    launched.append(start_api(settings))
    _, stderr = launched[0].communicate(timeout=120)
    assert launched[0].returncode == 1
    assert stderr.startswith("Error: refusing to listen on 0.0.0.0: no API token is configured")
    assert "ORCH_API_INSECURE" in stderr and len(stderr.strip().splitlines()) == 1


def test_an_unknown_bootstrap_scope_is_a_one_line_refusal(
    settings: Settings, launched: list[subprocess.Popen[str]]
) -> None:
    launched.append(start_api(settings, API_TOKENS='{"s3cr3t": ["read"]}'))
    _, stderr = launched[0].communicate(timeout=120)
    assert launched[0].returncode == 1
    assert "unknown scope(s) read" in stderr and "s3cr3t" not in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_insecure_or_a_token_lets_it_listen(
    settings: Settings, launched: list[subprocess.Popen[str]]
) -> None:
    launched.append(start_api(settings, API_INSECURE="true"))
    assert _answers(settings, launched[0])
    launched[0].terminate()
    launched[0].wait(timeout=30)

    upgrade(settings.resolved_database_url)
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "tokens",
            "create",
            "--name",
            "ops",
            "--scope",
            "admin",
        ],
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert made.stdout.startswith("orch_")
    launched.append(start_api(settings))
    assert _answers(settings, launched[1])
    refused = requests.get(f"http://127.0.0.1:{settings.api_port}/v1/jobs", timeout=10)
    assert refused.status_code == 401


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.9.9.9", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.5", "api.example.net"]))


def _answers(settings: Settings, process: subprocess.Popen[str], timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            requests.get(f"http://127.0.0.1:{settings.api_port}/v1/health", timeout=2)
            return True
        except requests.ConnectionError:
            time.sleep(0.2)
    return False
