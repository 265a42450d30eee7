"""The one-way imports of DESIGN.md, seen at run time: what a fresh interpreter loads.

``lint-imports`` (``make lint``) checks the same rules on the source; these tests prove what an
API process and a worker process actually load, lazy imports and plugins included.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

API_PROBE = """
import tempfile
from pathlib import Path

import orchestrator.jobs.submission
import orchestrator.kinds
from api import create_app
from orchestrator.settings import Settings

with tempfile.TemporaryDirectory() as var_dir:
    client = create_app(Settings(var_dir=Path(var_dir))).test_client()
    for path in ("/v1/kinds", "/v1/openapi.json"):
        assert client.get(path).status_code == 200, path
"""

WORKERS_PROBE = """
import importlib
import pkgutil

import workers

for module in pkgutil.walk_packages(workers.__path__, "workers."):
    importlib.import_module(module.name)
"""

SQL_MODULES = (
    "sqlalchemy",
    "alembic",
    "orchestrator.db",
    "orchestrator.models",
    "orchestrator.jobs.store",
)


def loaded_by(code: str, packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` that a fresh interpreter holds after running ``code``."""
    report = "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", code + report],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.fail(f"the probe failed:\n{done.stderr}")
    modules = json.loads(done.stdout.splitlines()[-1])
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)]


def test_the_api_and_the_job_submission_load_no_ssh_libvirt_or_worker_code() -> None:
    loaded = loaded_by(API_PROBE, ("paramiko", "libvirt", "workers"))
    assert loaded == [], "see the import chain with .venv/bin/lint-imports"


def test_workers_never_load_sql() -> None:
    loaded = loaded_by(WORKERS_PROBE, (*SQL_MODULES, "api", "flask"))
    assert loaded == [], "see the import chain with .venv/bin/lint-imports"


def test_the_probe_walks_every_worker_module_and_sees_what_they_load() -> None:
    # Without this, an empty walk or a blind probe would let both tests above pass.
    on_disk = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "workers").rglob("*.py")
    }
    loaded = loaded_by(WORKERS_PROBE, ("workers", "libvirt", "paramiko"))
    assert on_disk <= set(loaded)
    assert {"libvirt", "paramiko"} <= set(loaded)
    assert loaded_by(WORKERS_PROBE + "import orchestrator.jobs.store\n", SQL_MODULES)
