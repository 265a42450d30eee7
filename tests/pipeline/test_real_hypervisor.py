"""The pipeline against the machine's real libvirtd (qemu:///system) and on PostgreSQL."""

from __future__ import annotations

import libvirt
import pytest

from tests.support.databases import postgres_admin_url, temporary_database


def test_facts_of_the_real_hypervisor_match_what_libvirt_reports(
    make_stack,
    qemu_uri: str,  # type: ignore[no-untyped-def]
) -> None:
    stack = make_stack({"kvm-local": qemu_uri})
    done = stack.run("hypervisor.facts", "kvm-local")
    assert done["state"] == "succeeded", done["error"]
    facts = done["result"]
    conn = libvirt.open(qemu_uri)
    try:
        assert facts["driver"] == "QEMU"
        assert facts["hostname"] == conn.getHostname()
        assert facts["cpu"]["count"] == conn.getInfo()[2]
        assert facts["hypervisor_version"].count(".") == 2
        assert {n["name"] for n in facts["networks"]} == {n.name() for n in conn.listAllNetworks()}
    finally:
        conn.close()
    heartbeat = stack.api.get("/v1/hypervisors/kvm-local")
    assert heartbeat["capacity"]["memory_mib"] == facts["memory_mib"]


@pytest.mark.postgres
def test_a_ping_runs_end_to_end_with_postgresql_as_the_database(
    make_stack,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    if not postgres_admin_url():
        pytest.skip("no PostgreSQL server: set ORCH_TEST_POSTGRES_URL (make test starts one)")
    with temporary_database("postgresql", tmp_path) as url:
        stack = make_stack({"hv-a": "test:///default"}, database_url=url)
        done = stack.run("ping", "hv-a")
        assert done["state"] == "succeeded"

        assert stack.wait_recorded(done["id"], "succeeded").result == done["result"]
        stack.stack.stop()
