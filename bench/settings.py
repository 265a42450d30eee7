"""Settings of the stack a benchmark starts: its own Redis port, SQLite file and API port."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.local.processes import free_port
from orchestrator.settings import Settings


def bench_settings(
    work: Path, redis_port: int, hypervisor: str, libvirt_uri: str, **overrides: Any
) -> Settings:
    return Settings(
        var_dir=work / "var",
        database_url=f"sqlite:///{work / 'orchestrator.db'}",
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        api_port=free_port(),
        hypervisor=hypervisor,
        libvirt_uri=libvirt_uri,
        **overrides,
    )
