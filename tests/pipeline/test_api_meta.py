"""What the API says about itself, over HTTP on a real stack: the job kinds and their parameter
schemas, the OS variants of the osinfo database, and health with Redis up and down."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.kinds import KINDS
from orchestrator.local.processes import ServiceProcess
from tests.support import services
from tests.support.services import RunningStack

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: str) -> Iterator[RunningStack]:
    # No worker: kinds, OS variants and parameter checks are answered by the API alone.
    with services.test_stack(tmp_path_factory.mktemp("meta"), redis_server, {}) as running:
        yield running


def get(stack: RunningStack, path: str, **query: str) -> requests.Response:
    return requests.get(f"{stack.settings.resolved_api_url}{path}", params=query, timeout=30)


def listed_kinds(stack: RunningStack) -> dict[str, dict[str, Any]]:
    response = get(stack, "/v1/kinds")
    assert response.status_code == 200
    return {item["name"]: item for item in response.json()["items"]}


def readme_kinds() -> set[str]:
    """The kind names in the README's "Job kinds" table."""
    section = README.read_text().split("## Job kinds", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


# --- GET /v1/kinds ------------------------------------------------------------------------


def test_kinds_lists_every_registered_and_documented_kind(stack: RunningStack) -> None:
    names = set(listed_kinds(stack))

    assert names == set(KINDS)
    assert names == readme_kinds()


def test_each_kind_is_listed_with_the_parameter_schema_of_its_model(stack: RunningStack) -> None:
    listed = listed_kinds(stack)

    for name, kind in KINDS.items():
        item = listed[name]
        assert item["params"] == kind.params.model_json_schema(), name
        assert item["summary"] == kind.summary and item["summary"], name
        assert item["safe_to_rerun"] is kind.safe_to_rerun, name


def post_job(stack: RunningStack, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{stack.settings.resolved_api_url}/v1/jobs", json=body, timeout=30)


def test_a_parameter_the_listed_schema_lacks_is_refused_for_every_kind(
    stack: RunningStack,
) -> None:
    for name, item in listed_kinds(stack).items():
        assert item["params"]["additionalProperties"] is False, name
        assert "no_such_parameter" not in item["params"].get("properties", {})

        response = post_job(stack, {"kind": name, "params": {"no_such_parameter": 1}})

        assert response.status_code == 422, name
        fields = {error["field"] for error in response.json()["errors"]}
        assert "params.no_such_parameter" in fields, name
    assert stack.api.list_jobs({}) == []


def test_every_parameter_the_listed_schema_requires_is_named_when_missing(
    stack: RunningStack,
) -> None:
    checked = 0
    for name, item in listed_kinds(stack).items():
        required = {f"params.{field}" for field in item["params"].get("required", [])}
        if not required:
            continue  # an empty body may be valid: it would start a job
        response = post_job(stack, {"kind": name, "params": {}})

        assert response.status_code == 422, name
        assert required <= {error["field"] for error in response.json()["errors"]}, name
        checked += 1
    assert checked >= 10
    assert stack.api.list_jobs({}) == []


# --- GET /v1/os-variants ------------------------------------------------------------------


def os_variants(stack: RunningStack, **query: str) -> list[dict[str, Any]]:
    response = get(stack, "/v1/os-variants", **query)
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def virt_install_variants() -> list[frozenset[str]]:
    """``virt-install --osinfo list``: one line of short ids per variant, then a hint."""
    if not shutil.which("virt-install"):
        pytest.skip("virt-install is not installed (Debian package virtinst)")
    out = subprocess.run(
        ["virt-install", "--osinfo", "list"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    lines = out.split("\n\n", 1)[0].splitlines()
    return [frozenset(part.strip() for part in line.split(",")) for line in lines if line.strip()]


def test_os_variants_are_the_osinfo_databases_as_virt_install_lists_them(
    stack: RunningStack,
) -> None:
    served = [frozenset(item["short_ids"]) for item in os_variants(stack)]

    assert len(served) == len(set(served))
    assert set(served) == set(virt_install_variants())


def test_rhel7_is_listed_with_the_databases_id_and_name(stack: RunningStack) -> None:
    by_short_id = {short: item for item in os_variants(stack) for short in item["short_ids"]}

    rhel7 = by_short_id["rhel7.0"]
    assert rhel7["id"] == "http://redhat.com/rhel/7.0"
    assert rhel7["name"] == "Red Hat Enterprise Linux 7.0"
    assert rhel7["family"] == "linux" and rhel7["distro"] == "rhel"
    assert "rhel7.9" in by_short_id and "generic" in by_short_id


def test_the_documented_q_filter_keeps_the_variants_matching_by_short_id_or_name(
    stack: RunningStack,
) -> None:
    openapi = get(stack, "/v1/openapi.json").json()
    assert "?q=" in openapi["paths"]["/v1/os-variants"]["get"]["summary"]
    everything = os_variants(stack)

    def matching(text: str) -> list[str]:
        text = text.lower()
        return [
            item["short_id"]
            for item in everything
            if text in item["name"].lower() or any(text in s for s in item["short_ids"])
        ]

    by_short_id = [item["short_id"] for item in os_variants(stack, q="rhel7")]
    assert by_short_id == matching("rhel7")
    assert {"rhel7.0", "rhel7.9"} <= set(by_short_id) and "centos7.0" not in by_short_id
    assert len(by_short_id) < len(everything)

    by_name = [item["short_id"] for item in os_variants(stack, q="RED HAT ENTERPRISE LINUX 7.9")]
    assert by_name == ["rhel7.9"]

    assert os_variants(stack, q="no-such-operating-system") == []


# --- GET /v1/health -----------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[ServiceProcess]:
    """A redis-server this test alone uses, so stopping it disturbs no other stack."""
    with services.running_redis(tmp_path / "own-redis") as server:
        yield server


def health(stack: RunningStack) -> requests.Response:
    return get(stack, "/v1/health")


def wait_for_health(stack: RunningStack, status: int, timeout: float = 60) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = health(stack)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_health_is_503_naming_redis_while_it_is_down_and_200_once_it_is_back(
    own_redis: ServiceProcess, make_stack: Any
) -> None:
    stack: RunningStack = make_stack({}, redis_url=services.redis_url(own_redis))
    up = health(stack)
    assert up.status_code == 200
    assert all(check["ok"] and check["ms"] >= 0 for check in up.json()["checks"].values())

    own_redis.stop()
    down = health(stack)

    assert down.status_code == 503
    checks = down.json()["checks"]
    assert checks["redis"]["ok"] is False and checks["redis"]["error"]
    assert checks["sql"]["ok"] is True and checks["sql"]["ms"] >= 0

    own_redis.start()
    back = wait_for_health(stack, 200)
    assert back.status_code == 200, back.text
    assert back.json()["checks"]["redis"]["ok"] is True
