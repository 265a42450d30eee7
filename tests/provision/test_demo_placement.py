"""The demo's placement steps (:mod:`orchestrator.local.demo_placement`) on a stack whose local
hypervisor is a test-driver node holding the demo pool and base image, as the earlier demo steps
leave the real one: the second hypervisor they start takes half of ``count: 4``, the VMs are
removed from both, and the count that fits nowhere is refused with the memory filter named."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from orchestrator.local import demo_placement
from orchestrator.local.demo_placement import SECOND, node_xml, placement_steps
from orchestrator.local.demo_storage import demo_pool, demo_pool_dir
from orchestrator.settings import Settings
from tests.support import services
from tests.support.services import RunningStack

LOCAL = "local"


@pytest.fixture
def stack(tmp_path: Path, redis_server: str) -> Iterator[RunningStack]:
    var = tmp_path / "var"
    pool = demo_pool(Settings(var_dir=var))
    node = tmp_path / "local.xml"
    node.write_text(node_xml(pool, Path(demo_pool_dir(Settings(var_dir=var))), 4, 8192))
    with services.test_stack(tmp_path, redis_server, {LOCAL: f"test://{node}"}) as running:
        yield running


@pytest.fixture
def printed(monkeypatch: pytest.MonkeyPatch) -> Console:
    """The steps' console, recording what they print at a width no line wraps at."""
    console = Console(record=True, width=400, force_terminal=False)
    monkeypatch.setattr(demo_placement, "console", console)
    return console


def run_steps(stack: RunningStack) -> list[dict[str, Any]]:
    return [step(stack.api, stack.settings) for _title, step in placement_steps(stack.stack)]


def test_the_demo_spreads_count_4_over_two_hypervisors_and_explains_a_refusal(
    stack: RunningStack, printed: Console
) -> None:
    started, provisioned, removed, refused, stopped = run_steps(stack)
    output = printed.export_text()

    assert started["state"] == "succeeded", started
    assert {hv["state"] for hv in started["result"]["hypervisors"].values()} == {"up"}
    assert started["result"]["hypervisors"][SECOND]["memory_mib"] == 8192  # what local has free

    assert provisioned["state"] == "succeeded", provisioned["error"]
    landed = provisioned["result"]["vms"]
    assert sorted(landed) == [f"orchestrator-demo-{i}" for i in range(1, 5)]
    assert Counter(landed.values()) == {LOCAL: 2, SECOND: 2}
    assert provisioned["result"]["hypervisors"] == {
        LOCAL: {"succeeded": 2},
        SECOND: {"succeeded": 2},
    }
    assert f"dry run (claims nothing): placed 4: {SECOND} 2, {LOCAL} 2" in output
    assert f"queued: 4 VMs: {SECOND} 2, {LOCAL} 2" in output
    for name, hypervisor in landed.items():
        assert f"{name} -> {hypervisor}, succeeded: placed on {hypervisor} (spread)" in output

    assert removed["state"] == "succeeded", removed
    assert {hv: sorted(names) for hv, names in removed["result"]["removed"].items()} == {
        hv: sorted(name for name, where in landed.items() if where == hv) for hv in (LOCAL, SECOND)
    }
    assert output.count("destroyed, undefined, deleted") == 4

    assert refused["state"] == "succeeded", refused
    detail = refused["result"]["detail"]
    assert refused["result"]["status"] == 409
    assert detail.startswith("VM 3 of 3 (orchestrator-demo-big-3): no hypervisor fits: 2 hosts")
    assert f"memory removed 2 ({SECOND}, {LOCAL})" in detail
    assert refused["result"]["removed_by_filter"]["memory"] == 2
    assert f"filter memory removed 2: {SECOND}, {LOCAL}" in output

    assert stopped["state"] == "succeeded"
    assert all(service.name != f"worker-{SECOND}" for service in stack.stack.services)
    # The refusal stored nothing: the parent and its four children are the only provisions.
    jobs = stack.api.list_jobs({"kind": "vm.provision", "limit": 500})
    assert len(jobs) == 5
    assert not any("big" in job["params"]["name"] for job in jobs)
    # The refused VMs' claims were given back at once: the local hypervisor, still up, holds
    # none of their memory.
    refused_vm_mib = math.ceil(8192 * demo_placement.TOO_BIG_SHARE)
    assert f"3 VMs of {refused_vm_mib} MiB" in output
    assert stack.api.get(f"/v1/hypervisors/{LOCAL}")["claims"]["memory_mib"] < refused_vm_mib
    # Nothing of the count is left on the local hypervisor.
    domains = stack.run("domain.list", LOCAL)["result"]["domains"]
    assert [d["name"] for d in domains] == []
