"""The services `orchestrator up` starts are not open to whoever reaches them: its Redis asks
for a generated password, and Flower beyond loopback asks for basic auth."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import redis
import requests

from orchestrator.local.processes import free_port, port_open, redis_server
from orchestrator.local.stack import LocalStack, ensure_local_redis_password
from orchestrator.settings import Settings


def test_the_local_redis_password_is_made_once_and_readable_by_root_only(tmp_path: Path) -> None:
    first = ensure_local_redis_password(tmp_path)
    assert ensure_local_redis_password(tmp_path) == first and len(first) >= 32
    path = tmp_path / "redis" / "password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    url = Settings(var_dir=tmp_path).resolved_redis_url
    assert url == f"redis://:{first}@127.0.0.1:6399/0"


def test_a_redis_with_a_password_refuses_clients_without_it(tmp_path: Path) -> None:
    port = free_port()
    password = ensure_local_redis_password(tmp_path)
    server = redis_server(
        port, tmp_path / "redis", log_path=tmp_path / "redis.log", password=password
    )
    server.start()
    try:
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        assert redis.Redis(port=port, password=password).ping()
        assert server.process is not None
        cmdline = Path(f"/proc/{server.process.pid}/cmdline").read_bytes()
        assert password.encode() not in cmdline  # ps shows every local user the command line
    finally:
        server.stop()


def test_flower_beyond_loopback_without_a_password_is_refused(tmp_path: Path) -> None:
    settings = Settings(
        var_dir=tmp_path, redis_url="redis://127.0.0.1:1/0", flower_address="0.0.0.0"
    )
    with pytest.raises(ValueError, match="ORCH_FLOWER_BASIC_AUTH"):
        LocalStack(settings)._flower()


def test_flower_with_basic_auth_asks_for_it(tmp_path: Path, redis_server: str) -> None:
    settings = Settings(
        var_dir=tmp_path,
        redis_url=redis_server,
        flower_port=free_port(),
        flower_basic_auth="ops:correct-horse",
    )
    stack = LocalStack(settings)
    flower = stack.launch(stack._flower())
    try:
        flower.wait_ready(60)
        url = stack.flower_url
        assert requests.get(url, timeout=10).status_code == 401
        assert requests.get(url, auth=("ops", "wrong"), timeout=10).status_code == 401
        assert requests.get(url, auth=("ops", "correct-horse"), timeout=10).status_code == 200
        assert flower.process is not None
        environ_owner = os.stat(f"/proc/{flower.process.pid}/environ").st_uid
        cmdline = Path(f"/proc/{flower.process.pid}/cmdline").read_bytes()
        assert b"correct-horse" not in cmdline and environ_owner == 0
    finally:
        stack.stop()
    assert not port_open(settings.flower_port)()


def test_orchestrator_up_prints_service_urls_without_their_passwords() -> None:
    from orchestrator.cli import _without_password

    shown = _without_password("redis://:s3cret-pass@127.0.0.1:6399/0")
    assert shown == "redis://:***@127.0.0.1:6399/0"
    assert "s3cret" not in _without_password("postgresql+psycopg://orch:s3cret@db/orch")
