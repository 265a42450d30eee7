"""Which guest CPU modes boot, as the worker learns them when it starts on the real libvirtd, and
what a job sees: the best one by default, a 422 naming the ones that boot when it asks for one
that does not (nested KVM here aborts host-passthrough and host-model on MSR 0x10a)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import libvirt
import pytest

from orchestrator.local.bootsector import MARKER, write_base_image
from tests.capacity.conftest import (
    QEMU_HV,
    SLOW_LIVENESS,
    PoolDir,
    run_ok,
    wait_for_marker,
)
from tests.support.services import RunningStack
from workers.domains.cpu_probe import (
    CANDIDATES,
    learn_cpu_modes,
    probe_cpu_modes,
    probe_domain_xml,
    probe_name_prefix,
)
from workers.domains.host import HostFactsCache


def probe_domains(conn: libvirt.virConnect) -> list[str]:
    """This process's probe domains that libvirt still knows."""
    return [d.name() for d in conn.listAllDomains() if d.name().startswith(probe_name_prefix())]


def test_the_probe_keeps_the_modes_that_boot_best_first_and_each_refused_one_fails_to_start(
    qemu_conn: libvirt.virConnect,
) -> None:
    facts = HostFactsCache().get(qemu_conn)
    modes = probe_cpu_modes(qemu_conn, facts.domain_type, facts.arch)

    assert modes.boots, f"no candidate CPU starts here: {modes.refused}"
    assert list(modes.boots) == [c for c in CANDIDATES if c in modes.boots]
    assert set(modes.boots) | set(modes.refused) == set(CANDIDATES)
    assert probe_domains(qemu_conn) == []
    for candidate, reason in modes.refused.items():
        assert "Assertion" not in reason, reason
        with pytest.raises(libvirt.libvirtError):
            qemu_conn.createXML(probe_domain_xml(facts.domain_type, facts.arch, candidate), 0)
    best = qemu_conn.createXML(probe_domain_xml(facts.domain_type, facts.arch, modes.boots[0]), 0)
    try:
        assert best.isActive()
    finally:
        best.destroy()


def test_a_recorded_outcome_is_read_back_and_one_for_another_version_is_not(
    qemu_conn: libvirt.virConnect, tmp_path: Path
) -> None:
    facts = HostFactsCache().get(qemu_conn)
    learned = learn_cpu_modes(qemu_conn, facts.domain_type, facts.arch, tmp_path)
    assert learned.cached is False
    [recorded] = (tmp_path / "cpu-modes").iterdir()

    again = learn_cpu_modes(qemu_conn, facts.domain_type, facts.arch, tmp_path)
    assert again.cached is True
    assert (again.boots, again.refused, again.probed_at) == (
        learned.boots,
        learned.refused,
        learned.probed_at,
    )

    # As after an upgrade of qemu: what was recorded for the old version is not believed.
    stale = json.loads(recorded.read_text())
    stale["key"]["hypervisor"] -= 1
    recorded.write_text(json.dumps(stale))
    probed = learn_cpu_modes(qemu_conn, facts.domain_type, facts.arch, tmp_path)
    assert probed.cached is False and probed.probed_at > learned.probed_at
    assert probed.boots == learned.boots


def test_a_restarted_worker_reports_what_it_learned_without_probing_again(
    make_stack: Any, qemu_uri: str
) -> None:
    stack: RunningStack = make_stack({QEMU_HV: qemu_uri}, reuse_cpu_probe=False, **SLOW_LIVENESS)
    first = stack.api.get(f"/v1/hypervisors/{QEMU_HV}")
    assert first["cpu_probe"]["cached"] is False
    assert first["cpu_modes"] and first["cpu_mode"] == first["cpu_probe"]["boots"][0]

    stack.restart(f"worker-{QEMU_HV}")
    second = stack.api.get(f"/v1/hypervisors/{QEMU_HV}")
    assert second["instance"] != first["instance"]
    assert second["cpu_probe"] == {**first["cpu_probe"], "cached": True}
    assert second["cpu_modes"] == first["cpu_modes"]


def boot_params(place: PoolDir, name: str, **extra: Any) -> dict[str, Any]:
    """A domain booting the boot sector through an overlay, its serial port in a file."""
    return {
        "name": name,
        "memory_mib": 64,
        "vcpus": 1,
        "boot_source": "import",
        "disks": [
            {
                "source": {
                    "type": "new_volume",
                    "pool": place.name,
                    "size_gib": 1 / 1024,
                    "backing_volume": "base.img",
                }
            }
        ],
        "networks": [],
        "graphics": {"type": "vnc", "listen": "127.0.0.1"},
        "serials": [{"type": "file", "path": str(place.serial_log(name))}],
        **extra,
    }


def test_a_job_asking_for_a_cpu_that_does_not_boot_gets_422_naming_those_that_do(
    qemu_stack: RunningStack, pool_dir: PoolDir
) -> None:
    probe = qemu_stack.api.get(f"/v1/hypervisors/{QEMU_HV}")["cpu_probe"]
    if "host-passthrough" not in probe["refused"]:
        pytest.skip("host-passthrough boots on this hypervisor: nothing to refuse")
    run_ok(qemu_stack, QEMU_HV, "pool.ensure", name=pool_dir.name, path=str(pool_dir.directory))
    write_base_image(pool_dir.directory / "base.img")
    name = pool_dir.domain_name("passthrough")

    refused = qemu_stack.run(
        "domain.define", QEMU_HV, **boot_params(pool_dir, name, cpu={"mode": "host-passthrough"})
    )
    assert refused["state"] == "failed"
    problem = refused["error"]
    assert problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == ["params.cpu"]
    assert "cpu host-passthrough does not boot on this hypervisor" in problem["detail"]
    assert f"CPUs that boot here, best first: {', '.join(probe['boots'])}" in problem["detail"]
    assert "Assertion" not in problem["detail"]
    assert name not in {d.name() for d in pool_dir.conn.listAllDomains()}
    assert pool_dir.volumes() == {"base.img"}


def test_a_job_naming_no_cpu_boots_with_the_best_one_that_booted_at_start(
    qemu_stack: RunningStack, pool_dir: PoolDir
) -> None:
    best = qemu_stack.api.get(f"/v1/hypervisors/{QEMU_HV}")["cpu_probe"]["boots"][0]
    run_ok(qemu_stack, QEMU_HV, "pool.ensure", name=pool_dir.name, path=str(pool_dir.directory))
    write_base_image(pool_dir.directory / "base.img")
    name = pool_dir.domain_name("auto")

    defined = run_ok(qemu_stack, QEMU_HV, "domain.define", **boot_params(pool_dir, name))
    assert defined["state"] == "running"
    assert wait_for_marker(pool_dir.serial_log(name)).startswith(MARKER)
    cpu = ET.fromstring(pool_dir.conn.lookupByName(name).XMLDesc(0)).find("cpu")
    assert cpu is not None
    if best == "qemu64,-svm":
        assert (cpu.get("mode"), cpu.findtext("model")) == ("custom", "qemu64")
        assert cpu.find("feature[@name='svm']").get("policy") == "disable"  # type: ignore[union-attr]
    else:
        assert cpu.get("mode") == best
