"""The placement part of ``orchestrator demo``: a second hypervisor beside the local one, a
``vm.provision`` with ``count: 4`` that placement spreads over both, the VMs removed again, and
a count that fits nowhere, refused with what each filter removed.

The second hypervisor is libvirt's test driver (``test:///<node.xml>``), served by a worker of its
own. Its node holds a pool named like the demo pool with a volume named like the boot-sector base
image, so the pool filter passes on both; its memory is the local hypervisor's free memory at
that moment, so that spread (the most free memory first) takes the two in turn. Its VMs are
libvirt's test domains: defined and "running" inside that worker, gone when it stops.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from rich.console import Console

from orchestrator.client import ApiClient, ApiError
from orchestrator.local.demo_domains import BASE_IMAGE, IMAGE_BYTES
from orchestrator.local.demo_steps import Step
from orchestrator.local.demo_storage import demo_pool
from orchestrator.local.processes import ServiceProcess
from orchestrator.local.stack import LocalStack
from orchestrator.settings import Settings

SECOND = "demo-test-driver"
PATTERN = "orchestrator-demo-{index}"
COUNT = 4
TOO_BIG_COUNT = 3
# Each of the refused VMs takes this share of the larger hypervisor's memory: either holds one
# at most, so the third fits nowhere whatever the two hold already.
TOO_BIG_SHARE = 0.6
JOB_TIMEOUT = 300.0

NODE_XML = """<node>
  <cpu>
    <nodes>1</nodes><sockets>1</sockets><cores>{cpus}</cores><threads>1</threads>
    <active>{cpus}</active><mhz>2000</mhz><model>x86_64</model>
  </cpu>
  <memory>{memory_kib}</memory>
  <pool type='dir'>
    <name>{pool}</name>
    <capacity unit='GiB'>100</capacity>
    <allocation unit='GiB'>0</allocation>
    <available unit='GiB'>100</available>
    <target><path>{path}</path></target>
    <volume type='file'>
      <name>{image}</name>
      <capacity unit='bytes'>{image_bytes}</capacity>
      <allocation unit='bytes'>{image_bytes}</allocation>
      <target><path>{path}/{image}</path><format type='raw'/></target>
    </volume>
  </pool>
</node>
"""

console = Console()


def node_xml(pool: str, directory: Path, cpus: int, memory_mib: int) -> str:
    """A test-driver node with ``cpus`` and ``memory_mib``, and a directory pool ``pool`` at
    ``directory`` holding a volume named like the demo's base image. The test driver keeps its
    volumes in memory and never writes to the directory."""
    return NODE_XML.format(
        cpus=cpus,
        memory_kib=memory_mib * 1024,
        pool=escape(pool),
        path=escape(str(directory)),
        image=escape(BASE_IMAGE),
        image_bytes=IMAGE_BYTES,
    )


def node_file(settings: Settings) -> Path:
    return settings.var_dir.resolve() / "demo" / f"{SECOND}.xml"


class SecondHypervisor:
    """The test-driver hypervisor's worker, started into the stack (so that stopping the stack
    stops it too, whatever happens between) and stopped by its own step."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.service: ServiceProcess | None = None

    def start(self, client: ApiClient, settings: Settings) -> dict[str, Any]:
        local = _fresh_heartbeat(client, settings.hypervisor)
        cpus = int(local["capacity"]["cpus"])
        free = local["capacity"]["memory_mib"] - local["allocated"]["memory_mib"]
        # Claims an earlier run left on either (given back once the recorder sees them spent)
        # count against each one's room: the two start with the same room free.
        claimed = local["claims"]["memory_mib"] - _claimed_memory(client, SECOND)
        memory_mib = int(free - claimed)
        path = node_file(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A pool directory of its own under var/pools: a pool root, where the worker may delete
        # the volumes of the VMs it removes.
        directory = settings.var_dir.resolve() / "pools" / SECOND
        path.write_text(node_xml(demo_pool(settings), directory, cpus, memory_mib))
        uri = f"test://{path}"
        self.service = self.stack.launch(self.stack.worker(SECOND, uri))
        self.service.wait_ready(60)
        console.print(
            f"{SECOND}: {uri}, {cpus} CPUs and {memory_mib} MiB (what {settings.hypervisor} has "
            f"free), pool {demo_pool(settings)} holding a volume {BASE_IMAGE}; "
            f"worker log {self.service.log_path}"
        )
        both = (settings.hypervisor, SECOND)
        seen = {name: _summary(client.get(f"/v1/hypervisors/{name}")) for name in both}
        return _shown({"hypervisors": seen})

    def stop(self, client: ApiClient, settings: Settings) -> dict[str, Any]:
        if self.service is not None:
            self.service.stop()
            self.stack.services.remove(self.service)
            self.service = None
        node_file(settings).unlink(missing_ok=True)
        return _shown({"stopped": f"worker-{SECOND}", "libvirt": "its test domains went with it"})


def _claimed_memory(client: ApiClient, name: str) -> int:
    """The memory claimed on ``name``; 0 for a hypervisor never seen."""
    try:
        return int(client.get(f"/v1/hypervisors/{name}")["claims"]["memory_mib"])
    except ApiError as exc:
        if exc.problem.get("status") == 404:
            return 0
        raise


def _fresh_heartbeat(client: ApiClient, name: str, timeout: float = 60.0) -> dict[str, Any]:
    """The hypervisor's document once its capacity was read after this call began: a read
    from before would still count the domains the steps before removed."""
    since = time.time()
    deadline = time.monotonic() + timeout
    while True:
        document: dict[str, Any] = client.get(f"/v1/hypervisors/{name}")
        if (document.get("capacity_at") or 0) > since or time.monotonic() > deadline:
            return document
        time.sleep(0.5)


def _summary(document: dict[str, Any]) -> dict[str, Any]:
    capacity = document.get("capacity") or {}
    return {
        "state": document["state"],
        "cpus": capacity.get("cpus"),
        "memory_mib": capacity.get("memory_mib"),
        "libvirt_uri": document.get("libvirt_uri"),
    }


def count_body(settings: Settings, count: int, pattern: str, memory_mib: int) -> dict[str, Any]:
    """``count`` small VMs named by ``pattern``, each on an overlay of the boot-sector image,
    without a NIC or a display; no hypervisor named, so placement chooses each one's."""
    params = {
        "count": count,
        "name": pattern,
        "memory_mib": memory_mib,
        "disk": {"base_image": f"{demo_pool(settings)}/{BASE_IMAGE}"},
        "network": "none",
        "graphics": "none",
    }
    return {"kind": "vm.provision", "params": params}


def provision_four(client: ApiClient, settings: Settings) -> dict[str, Any]:
    """Preview, then submit, the count; wait for the parent; say where each child went and why."""
    _removed, failed = _remove_vms(client, settings, leftovers=True)
    if failed is not None:
        return failed
    body = count_body(settings, COUNT, PATTERN, memory_mib=64)
    preview: dict[str, Any] = client.post("/v1/jobs", body, dry_run="true")
    console.print(f"dry run (claims nothing): {preview['placement']['explanation']}")
    console.print(
        "spread: each VM goes where the most memory is free, counting the VMs placed before it"
    )
    parent = client.submit(body)
    console.print(f"parent job {parent['id']}: {parent['children']['count']} children")
    console.print(f"  queued: {_queued_message(client, parent['id'])}")
    done = client.wait(parent["id"], timeout=JOB_TIMEOUT)
    kids = sorted(
        client.list_jobs({"parent": parent["id"], "limit": 500}),
        key=lambda kid: kid["params"]["name"],
    )
    for kid in kids:
        console.print(
            f"  {kid['params']['name']} -> {kid['hypervisor']}, {kid['state']}: "
            f"{_queued_message(client, kid['id'])}"
        )
    landed = {kid["params"]["name"]: kid["hypervisor"] for kid in kids}
    return {**done, "result": {**(done["result"] or {}), "vms": landed}}


def _queued_message(client: ApiClient, job_id: str) -> str:
    """Where the job went and why, as its queued event says it."""
    for event in client.events(job_id):
        if event.get("state") == "queued":
            return str(event.get("message"))
    return "(no queued event)"


def remove_four(client: ApiClient, settings: Settings) -> dict[str, Any]:
    """Destroy and undefine, with its overlay, every VM of the count, on the hypervisor that
    holds it; a leftover of an interrupted run goes the same way."""
    removed, failed = _remove_vms(client, settings, leftovers=False)
    return failed or _shown({"removed": removed})


def _remove_vms(
    client: ApiClient, settings: Settings, *, leftovers: bool
) -> tuple[dict[str, list[str]], dict[str, Any] | None]:
    """The VMs of the count removed, per hypervisor, and the job that failed, if one did.
    ``leftovers``: before the count, where any VM found is one an interrupted run left."""
    removed: dict[str, list[str]] = {}
    for name, hypervisor in _vms(client, settings):
        if leftovers:
            console.print(f"{name} on {hypervisor} is left from an earlier run: removing it first")
        for kind, params in (
            ("domain.destroy", {"name": name}),
            ("domain.undefine", {"name": name, "remove_storage": True}),
        ):
            job = _run_on(client, hypervisor, kind, params)
            if job["state"] != "succeeded":
                return removed, job
        removed.setdefault(hypervisor, []).append(name)
        if not leftovers:
            volumes = ", ".join(job["result"]["removed_volumes"]) or "no volume"
            console.print(f"  {name} on {hypervisor}: destroyed, undefined, deleted {volumes}")
    return removed, None


def _vms(client: ApiClient, settings: Settings) -> list[tuple[str, str]]:
    """(name, hypervisor) of each VM of the count that a hypervisor of the demo defines."""
    found = []
    for hypervisor in (settings.hypervisor, SECOND):
        for index in range(1, COUNT + 1):
            name = PATTERN.format(index=index)
            try:
                client.get(f"/v1/domains/{hypervisor}/{name}")
            except ApiError as exc:
                if exc.problem.get("status") == 404:
                    continue
                raise
            found.append((name, hypervisor))
    return found


def _run_on(
    client: ApiClient, hypervisor: str, kind: str, params: dict[str, Any]
) -> dict[str, Any]:
    body = {"kind": kind, "params": params, "hypervisor": hypervisor}
    return client.wait(client.submit(body)["id"], timeout=JOB_TIMEOUT)


def refused_count(client: ApiClient, settings: Settings) -> dict[str, Any]:
    """Three VMs each too large for two on one hypervisor: the third fits nowhere, so the API
    refuses the whole request with a 409 naming the filters, and stores and claims nothing."""
    largest = max(
        client.get(f"/v1/hypervisors/{name}")["capacity"]["memory_mib"]
        for name in (settings.hypervisor, SECOND)
    )
    memory_mib = math.ceil(largest * settings.ram_allocation_ratio * TOO_BIG_SHARE)
    body = count_body(settings, TOO_BIG_COUNT, "orchestrator-demo-big-{index}", memory_mib)
    console.print(
        f"{TOO_BIG_COUNT} VMs of {memory_mib} MiB ({TOO_BIG_SHARE:.0%} of the larger "
        "hypervisor's memory: each holds one at most), no hypervisor named"
    )
    try:
        job = client.submit(body)
    except ApiError as refused:
        problem = refused.problem
    else:
        client.http.post(f"{client.base_url}/v1/jobs/{job['id']}/cancel", timeout=60)
        return _failure("accepted", f"the API accepted it as job {job['id']} (cancelled)")
    filters = _filters(problem)
    if problem.get("status") != 409 or not filters:
        return _failure("not a placement refusal", str(problem.get("detail")))
    console.print(f"{problem.get('status')} {problem.get('title')}: {problem.get('detail')}")
    for outcome in filters:
        if outcome["removed"]:
            hosts = ", ".join(outcome["hosts"])
            console.print(f"  filter {outcome['filter']} removed {outcome['removed']}: {hosts}")
    shown = {k: problem.get(k) for k in ("status", "title", "detail")}
    removed = {outcome["filter"]: outcome["removed"] for outcome in filters}
    return _shown({**shown, "removed_by_filter": removed})


def _filters(problem: dict[str, Any]) -> list[dict[str, Any]]:
    """Each filter's outcome in the decision that found no room (a count's is its failure)."""
    placement = problem.get("placement") or {}
    decision = placement.get("failure") or placement
    return list(decision.get("filters") or [])


def _shown(result: dict[str, Any]) -> dict[str, Any]:
    """A step's outcome in the shape the demo prints jobs in."""
    return {"id": None, "state": "succeeded", "result": result}


def _failure(title: str, detail: str) -> dict[str, Any]:
    return {
        "id": None,
        "state": "failed",
        "result": None,
        "error": {"title": title, "detail": detail},
    }


def placement_steps(stack: LocalStack) -> list[tuple[str, Step]]:
    """The steps, in order; they run between the domain steps and the base image's removal."""
    second = SecondHypervisor(stack)
    return [
        ("a second hypervisor: libvirt's test driver, with a worker of its own", second.start),
        (
            f"vm.provision count {COUNT}: one parent job, {COUNT} VMs placed over both hypervisors",
            provision_four,
        ),
        (
            f"domain.destroy + domain.undefine: the {COUNT} VMs, each on its own hypervisor",
            remove_four,
        ),
        (
            "refused: a count that fits nowhere; the 409 says what each filter removed",
            refused_count,
        ),
        ("stop the second hypervisor's worker", second.stop),
    ]
